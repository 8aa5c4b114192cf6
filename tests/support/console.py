"""In-memory fakes of the console's ports (``releasegate.console_ports``) and a browser-like driver that
signs in, enrols and approves with a software authenticator (``tests.support.passkeys``)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from releasegate.clock import FixedClock
from releasegate.console import create_app
from releasegate.console_ports import ConsolePorts, ConsoleSettings, PendingApproval
from releasegate.console_settings import ConsoleOidcSettings
from releasegate.errors import Refused
from releasegate.policy.approvers import ApproverConfig
from releasegate.policy.handshake import Approval, Handshake, Role
from releasegate.policy.passkey_approvals import check_any
from releasegate.policy.passkeys import Passkey, unb64url
from tests.support.passkeys import ORIGIN, RP_ID, SoftAuthenticator

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
PEOPLE = ("pm-anna", "owner-olga", "risk-carla", "audit-ida", "mallory")
REPORT = {
    "model": "credit",
    "candidate_version": "4",
    "champion_version": "3",
    "outcome": "promote",
    "gates": [
        {"name": "kpi_delta", "status": "pass", "measured": 0.0282, "threshold": 0.02, "evidence": "roc_auc: +2.82%"},
        {"name": "drift", "status": "pass", "measured": 0.08, "threshold": 0.2, "evidence": "max PSI 0.08"},
    ],
    "measures_plan": [],
    "evaluated_at": NOW.isoformat(),
}
FIGURES = {
    "primary_metric": "roc_auc",
    "candidate_kpi": 0.812,
    "champion_kpi": 0.79,
    "kpi_delta": 0.0282,
    "min_kpi_delta": 0.02,
    "drift_psi": {"age": 0.08, "income": 0.25},
    "max_psi": 0.2,
    "smoke": {"ok": True, "rows": 200},
}


@dataclass
class FakeDirectory:
    config_now: ApproverConfig
    clock: FixedClock = field(default_factory=lambda: FixedClock(NOW))
    proposals: list[tuple[str, Passkey]] = field(default_factory=list)
    invitations: dict[str, tuple[str, str, datetime]] = field(default_factory=dict)  # code -> (id, name, expiry)
    used: dict[str, str] = field(default_factory=dict)  # invitation id -> the proposal that used it

    def config(self) -> ApproverConfig:
        return self.config_now

    def invite(self, name: str, hours: int = 24) -> str:
        """What an admin does (``releasegate approvers invite``): a one-time code for ``name``."""
        code = f"code-{len(self.invitations) + 1}-{name}"
        self.invitations[code] = (
            f"invitation-{len(self.invitations) + 1}",
            name,
            self.clock.now() + timedelta(hours=hours),
        )
        return code

    def check_invitation(self, name: str, code: str) -> str:
        if code not in self.invitations:
            raise Refused("code", "no invitation has this code: ask an admin for one")
        iid, invited, expires = self.invitations[code]
        if invited != name:
            raise Refused("code", f"this invitation is for another name, not {name!r}")
        if self.clock.now() >= expires:
            raise Refused("code", "the invitation expired: ask an admin for another")
        if iid in self.used:
            raise Refused("code", "the invitation was used already: ask an admin for another")
        return iid

    def enrol(self, name: str, passkey: Passkey, actor: str, invitation: str | None = None) -> tuple[str, list[str]]:
        if name not in self.config_now.names():
            raise Refused("name", f"{name!r} is on no list")
        self.proposals.append((name, passkey))
        pid = f"proposal-{len(self.proposals)}"
        if invitation is not None:
            self.used[invitation] = pid
        return pid, [f"passkeys.{name} added"]

    def approve_all(self) -> None:
        """What two admins do: the proposals take effect."""
        keys = {**self.config_now.passkeys, **dict(self.proposals)}
        self.config_now = self.config_now.model_copy(update={"passkeys": keys})


@dataclass
class FakeDesk:
    directory: FakeDirectory
    clock: FixedClock
    refusals: list[tuple[str, str]] = field(default_factory=list)
    submitted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def pending(self) -> list[PendingApproval]:
        c = self.directory.config()
        base = Handshake(
            model="credit",
            candidate_version="4",
            requested_by="ml-engineer",
            tech_report_ref="artifact:r",
            tech_pass=True,
            candidate_sha256="a" * 64,
            gate_report_sha256="c" * 64,
            allow_lists=c.allow_lists(),
            passkeys=c.passkeys,
            owners=["owner-olga"],
        )
        pm = Approval(approver="pm-anna", reference="REV-1", role=Role.pm, at=NOW, key_id="k")
        return [
            PendingApproval("run-pm", base, Role.pm, NOW, REPORT, FIGURES),
            PendingApproval("run-risk", base.model_copy(update={"pm": pm}), Role.risk, NOW, REPORT, FIGURES),
        ]

    def page(self, roles: Collection[Role] | None, start: int, count: int) -> tuple[list[PendingApproval], int]:
        waiting = [i for i in self.pending() if roles is None or i.awaiting in roles]
        return waiting[start : start + count], len(waiting)

    def item(self, run_id: str) -> PendingApproval | None:
        return next((i for i in self.pending() if i.run_id == run_id), None)

    def record_refusal(self, item: PendingApproval, role: Role, refusal: str, raw: dict[str, Any]) -> str:
        self.refusals.append((item.run_id, refusal))
        return f"refusal-{len(self.refusals)}"

    def submit(self, item: PendingApproval, run_input: dict[str, Any]) -> str:
        """What the paused run does with the input: check the signed approval again."""
        from releasegate.policy.handshake import ApprovalFields

        fields = ApprovalFields.model_validate({k: v for k, v in run_input.items() if k not in ("role", "token")})
        check_any(item.handshake, item.awaiting, fields, run_input["token"], item.run_id, self.clock.now())
        self.submitted.append((item.run_id, run_input))
        return f"{item.awaiting.value.upper()}_GATE_PASS by {fields.approver} (decision d-1)"


@dataclass
class ListJournal:
    entries: list[dict[str, Any]] = field(default_factory=list)

    def record(self, what: str, actor: str, accepted: bool, rationale: str, **details: Any) -> str:
        self.entries.append({"what": what, "actor": actor, "accepted": accepted, "rationale": rationale, **details})
        return f"j-{len(self.entries)}"


@dataclass
class Rig:
    client: TestClient
    keys: dict[str, SoftAuthenticator]
    directory: FakeDirectory
    desk: FakeDesk
    journal: ListJournal
    clock: FixedClock

    def csrf(self) -> str:
        from releasegate.console.sessions import COOKIE

        store = self.client.app.state.console.store  # type: ignore[attr-defined]
        return str(store.serializer.loads(self.client.cookies[COOKIE])["csrf"])

    def post(self, url: str, body: dict[str, Any], csrf: bool = True) -> Any:
        headers = {"X-CSRF-Token": self.csrf()} if csrf else {}
        return self.client.post(url, json=body, headers=headers)

    def sign_in(self, name: str, key: str | None = None) -> Any:
        self.client.get("/signin")
        options = self.post("/signin/options", {"name": name})
        assert options.status_code == 200, options.text
        challenge = unb64url(options.json()["challenge"], "challenge")
        return self.post("/signin/verify", {"credential": self.keys[key or name].browser_json(challenge)})

    def approve(self, run: str, signer: str, reference: str = "REV-2", alter: dict[str, Any] | None = None) -> Any:
        s = self.post(f"/approvals/{run}/statement", {"decision": "approve", "reference": reference})
        if s.status_code != 200:
            return s
        challenge = unb64url(s.json()["publicKey"]["challenge"], "challenge")
        cred = self.keys[signer].browser_json(challenge)
        statement = {**s.json()["statement"], **(alter or {})}
        return self.post(f"/approvals/{run}", {"statement": statement, "credential": cred})


def rig(
    oidc: ConsoleOidcSettings | None = None,
    oidc_groups: dict[str, Any] | None = None,
    now: datetime = NOW,
    oncall: tuple[str, ...] = (),
    halts: Any = None,
) -> Rig:
    """The console over in-memory fakes; ``oidc``: sign-in with an identity provider, ``oidc_groups``
    the governed group -> role mapping, ``now`` the fixed clock (a real provider's tokens need today);
    ``oncall`` the on-call list, ``halts`` the halt switch's port (``console_ports.Halts``)."""
    keys = {n: SoftAuthenticator() for n in PEOPLE}
    config = ApproverConfig(
        pm=["pm-anna", "owner-olga"],
        risk=["risk-carla", "risk-dan"],
        admins=["eva", "omar"],
        auditors=["audit-ida"],
        passkeys={n: k.passkey() for n, k in keys.items() if n != "mallory"},
        oidc_groups=oidc_groups or {},
        oncall=list(oncall),
    )
    clock = FixedClock(now)
    directory = FakeDirectory(config, clock)
    desk = FakeDesk(directory, clock)
    journal = ListJournal()
    ports = ConsolePorts(desk=desk, directory=directory, journal=journal, clock=clock, halts=halts)
    settings = ConsoleSettings(rp_id=RP_ID, origin=ORIGIN, secret_key="test", idle_timeout_s=900, oidc=oidc)
    app = create_app(ports, settings)
    return Rig(TestClient(app, base_url=ORIGIN), keys, directory, desk, journal, clock)

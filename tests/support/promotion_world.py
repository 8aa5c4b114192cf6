"""In-memory fakes of every port of the promotion use case (``releasegate.promotion_ports``): no Prefect,
no MLflow, no database (``tests/unit/test_promotion_machine.py``, ``tests/unit/test_promotion_notices.py``).
Approvals are really signed (Ed25519) and really checked; the fake decision log restores a run's approvals
as the real one does (after the last ``ACK_EXPIRED``, about the same model, version and binary,
re-checked). A run that dies (``Crash``) or is deferred (``Deferred``) is run again with the same run id."""

from __future__ import annotations

import itertools
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from releasegate.clock import FixedClock
from releasegate.decisions import DecisionOutcome
from releasegate.policy.gates import GateReport, PromotionOutcome
from releasegate.policy.handshake import (
    Approval,
    ApprovalFields,
    ApprovalRefused,
    Handshake,
    Role,
    check_approval,
)
from releasegate.policy.signatures import public_hex, sign, statement_for
from releasegate.promotion_ports import ApprovalForm, Notifications, PromotionPorts
from releasegate.services.promotion_flow import PromotionEnd, PromotionRequest, run_promotion

MODEL, VERSION, SHA, RUN = "churn", "3", "ab" * 32, "run-1"
PEOPLE = ("pm-anna", "pm-ben", "risk-carla", "risk-dan", "comp-erin", "owner-olga", "ml-engineer")
KEYS = {name: Ed25519PrivateKey.generate() for name in (*PEOPLE, "mallory")}


class Crash(BaseException):
    """Stands for a killed process (not an Exception: nothing may catch it)."""


class Deferred(BaseException):
    """Stands for the capacity gateway deferring the run (Prefect runs it again later)."""


class Unanswered(Exception):
    """No one answered the approval request (Prefect: the pause timed out)."""


@dataclass
class Say:
    """One submission of the approval form: signed by ``key`` (default: the approver's own) unless
    ``signed=False``; ``role`` as typed in the form (default: the role asked for)."""

    approver: str
    decision: str = "approve"
    reference: str = "T-1"
    role: str | None = None
    key: str | None = None
    signed: bool = True


class FakeApprovals:
    def __init__(self, world: World) -> None:
        self.world = world
        self.script: list[Say | BaseException] = []
        self.asked: list[Role] = []

    def ask(self, role: Role, h: Handshake, timeout_s: int) -> ApprovalForm:
        assert "work" not in self.world.held, "a run waiting for people holds no work slot"
        assert f"promotion-{MODEL}" in self.world.held, "the model's lock is held for the whole run"
        self.asked.append(role)
        if not self.script:
            raise Unanswered(role.value)
        say = self.script.pop(0)
        if isinstance(say, BaseException):
            raise say
        fields = {"approver": say.approver, "decision": say.decision, "reference": say.reference}
        token = ""
        if say.signed:
            stmt = statement_for(h, role, ApprovalFields(**fields), self.world.run_id, self.world.clock.now())
            token = sign(stmt, KEYS[say.key or say.approver]).token()
        return ApprovalForm(
            fields={**fields, "statement": "", "comment": "", "role": say.role or role.value}, token=token
        )


@dataclass
class World:
    """The fakes of every port, and what they saw."""

    clock: FixedClock = field(default_factory=lambda: FixedClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC)))
    run_id: str = RUN
    outcome: PromotionOutcome = PromotionOutcome.promote
    compliance: bool = False
    allow: dict[Role, list[str]] = field(
        default_factory=lambda: {
            Role.pm: ["pm-anna", "pm-ben", "owner-olga", "ml-engineer"],
            Role.risk: ["risk-carla", "risk-dan"],
            Role.compliance: ["comp-erin"],
        }
    )
    owners: list[str] = field(default_factory=lambda: ["owner-olga"])
    records: list[dict[str, Any]] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)
    dossiers: int = 0
    copies: int = 0
    window: list[BaseException | timedelta] = field(default_factory=list)  # what each admit does
    crash_in_release: bool = False
    notifications: Notifications | None = None  # no notices unless a test gives them

    def __post_init__(self) -> None:
        self.approvals = FakeApprovals(self)
        self._ids = itertools.count(1)

    # --- Locks, Artifacts, Events, ReleaseWindow, Checks
    @contextmanager
    def _hold(self, name: str):
        assert name not in self.held, f"{name} taken twice"
        self.held.append(name)
        try:
            yield
        finally:
            self.held.remove(name)

    def model(self, model: str):
        return self._hold(f"promotion-{model}")

    def aliases(self, model: str):
        return self._hold(f"aliases-{model}")

    def work(self):
        return self._hold("work")

    def markdown(self, key: str, markdown: str, description: str) -> str:
        self.artifacts[key] = markdown
        return f"art-{len(self.artifacts)}"

    def emit(self, event: str, model: str, payload: dict[str, Any]) -> None:
        self.events.append((event, model, payload))

    def admit(self) -> None:
        if self.window:
            step = self.window.pop(0)
            if isinstance(step, timedelta):
                self.clock.advance(seconds=step.total_seconds())
            else:
                raise step

    def dossier(self, model: str, version: str, requested_by: str) -> dict[str, Any]:
        self.dossiers += 1
        return {"dossier": {"model": model, "candidate": {"artifact_sha256": SHA}}, "markdown": f"# Dossier {model}"}

    def gates(self, dossier: dict[str, Any]) -> dict[str, Any]:
        held = self.outcome is not PromotionOutcome.promote
        report = GateReport(
            model=dossier["model"],
            candidate_version=VERSION,
            champion_version=None,
            gates=[],
            outcome=self.outcome,
            measures_plan=["raise the KPI by 2 %"] if held else [],
            evaluated_at=self.clock.now(),
        )
        return {"report": report.model_dump(mode="json"), "markdown": report.markdown()}

    # --- PromotionRecords
    def _append(self, **rec: Any) -> str:
        rec |= {"id": f"d{next(self._ids)}", "run": self.run_id, "at": self.clock.now()}
        self.records.append(rec)
        return rec["id"]

    def finish_unfinished(self, model: str) -> list[dict[str, Any]]:
        assert f"aliases-{model}" in self.held
        done = []
        for p in self.of("pending"):
            if not any(f["pending"] == p["id"] for f in self.of("final")):
                done.append({"finished": p["id"]})
                self._append(kind="final", pending=p["id"], pending_run=p["run"])
        return done

    def record_tech(
        self, run_id: str, report: GateReport, report_ref: str, candidate_sha256: str, figures=None
    ) -> None:
        outcome = DecisionOutcome.accept if report.tech_gate_pass else DecisionOutcome.reject
        self._append(kind="tech", outcome=outcome, report_sha=report.sha256(), sha=candidate_sha256)

    def record_outcome(self, run_id, report, report_ref, outcome, rationale, **details) -> str:
        return self._append(kind="outcome", outcome=outcome, rationale=rationale, **details)

    def handshake_base(self, model: str, version: str, requested_by: str, **facts: Any) -> Handshake:
        return Handshake(
            model=model,
            candidate_version=version,
            requested_by=requested_by,
            allow_lists=self.allow,
            keys={n: public_hex(k.public_key()) for n, k in KEYS.items() if n != "mallory"},
            requires_compliance=self.compliance,
            owners=self.owners,
            **facts,
        )

    def restore_handshake(self, run_id: str, base: Handshake) -> Handshake:
        cleared = {r.value: None for r in Role}
        h = base.model_copy(update=cleared)
        for rec in self.records:
            if rec["run"] != run_id:
                continue
            if rec["kind"] == "outcome" and rec.get("reason_code") == "ACK_EXPIRED":
                h = h.model_copy(update=cleared)
            if rec["kind"] != "approval" or rec["refusal"] or rec["sha"] != base.candidate_sha256:
                continue
            fields = ApprovalFields(**{k: rec["raw"][k] for k in ("approver", "decision", "reference")})
            try:
                check_approval(h, rec["role"], fields)
            except ApprovalRefused:
                continue
            a = Approval(**fields.model_dump(), role=rec["role"], at=rec["at"], key_id=rec["key_id"])
            h = h.model_copy(update={rec["role"].value: a})
        return h

    def current_rules(self, h: Handshake) -> Handshake:
        now = self.handshake_base(h.model, h.candidate_version, h.requested_by)
        return h.model_copy(update={k: getattr(now, k) for k in ("allow_lists", "keys", "owners", "staged_by")})

    def record_approval(self, run_id, h, role, a, refusal, raw, signed=None) -> str:
        key_id = signed.key_id if signed is not None else None
        return self._append(
            kind="approval", role=role, refusal=refusal, raw=dict(raw), sha=h.candidate_sha256, key_id=key_id
        )

    def release(self, run_id, report, report_ref, h, ack_ref, candidate_sha256) -> dict[str, Any]:
        assert {"work", f"aliases-{MODEL}"} <= set(self.held)
        mine = [p for p in self.of("pending") if p["run"] == run_id]
        final = [f for f in self.of("final") if mine and f["pending"] == mine[-1]["id"]]
        if final:
            return {"decision_id": final[-1]["id"], "converged": True}
        if not mine:
            self._append(kind="pending", ack=ack_ref)
            self.copies += 1
            if self.crash_in_release:
                self.crash_in_release = False
                raise Crash()
        did = self._append(kind="final", pending=self.of("pending")[-1]["id"])
        return {"decision_id": did, "converged": bool(mine), "prod_version": "1"}

    # --- reading what happened
    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == kind]

    def approvals_given(self) -> list[tuple[str, str, str | None]]:
        return [(r["role"].value, r["raw"]["approver"], r["refusal"]) for r in self.of("approval")]

    def ports(self) -> PromotionPorts:
        return PromotionPorts(
            run_id=self.run_id,
            approvals=self.approvals,
            locks=self,
            artifacts=self,
            events=self,
            window=self,
            checks=self,
            records=self,
            clock=self.clock,
            sleep=self.slept.append,
            logger=logging.getLogger("test.promotion"),
            approval_cooldown_seconds=60,
            notifications=self.notifications,
        )

    def run(self, requested_by: str = "ml-engineer") -> PromotionEnd:
        return run_promotion(self.ports(), PromotionRequest(MODEL, VERSION, requested_by))

"""The promotion's state machine (``services.promotion_flow``) on in-memory fakes of its ports: no Prefect,
no MLflow, no database. Approvals are really signed (Ed25519) and really checked (``policy.handshake``,
``policy.signatures``); the fake decision log restores a run's approvals as the real one does (after the
last ``ACK_EXPIRED``, about the same model, version and binary, re-checked). A run that dies
(``Crash``) or is deferred (``Deferred``) is run again with the same run id, as Prefect would."""

from __future__ import annotations

import itertools
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from releasegate.clock import FixedClock
from releasegate.decisions import DecisionOutcome
from releasegate.policy.gates import GateReport, PromotionOutcome
from releasegate.policy.handshake import (
    REFUSALS_PER_BURST,
    Approval,
    ApprovalFields,
    ApprovalRefused,
    Handshake,
    Role,
    check_approval,
)
from releasegate.policy.signatures import public_hex, sign, statement_for
from releasegate.promotion_ports import ApprovalForm, PromotionPorts
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
        )

    def run(self, requested_by: str = "ml-engineer") -> PromotionEnd:
        return run_promotion(self.ports(), PromotionRequest(MODEL, VERSION, requested_by))


@pytest.fixture
def world() -> World:
    return World()


def _ok(end: PromotionEnd) -> dict[str, Any]:
    assert end.kind == "promoted", end
    assert end.data is not None
    return end.data


def test_all_approvals_release_the_binary_once_with_the_joint_ack(world):
    world.approvals.script = [Say("pm-anna"), Say("risk-carla")]
    data = _ok(world.run())
    assert data["outcome"] == "promote" and data["joint_release_ack_ref"].startswith("JOINT_RELEASE_ACK:")
    assert world.approvals.asked == [Role.pm, Role.risk]
    assert [r["kind"] for r in world.records] == ["tech", "approval", "approval", "pending", "final"]
    assert world.of("pending")[0]["ack"] == data["joint_release_ack_ref"] and world.copies == 1
    assert set(world.artifacts) == {f"dossier-{MODEL}", f"gate-report-{MODEL}"}
    assert world.held == [] and world.events == []


def test_a_high_risk_model_needs_compliance_third(world):
    world.compliance = True
    world.approvals.script = [Say("pm-anna"), Say("risk-carla"), Say("comp-erin")]
    _ok(world.run())
    assert world.approvals.asked == [Role.pm, Role.risk, Role.compliance]


@pytest.mark.parametrize(("outcome", "kind"), [(PromotionOutcome.hold, "held"), (PromotionOutcome.reject, "rejected")])
def test_a_hold_or_reject_of_the_gates_is_recorded_emitted_and_ends_the_run(world, outcome, kind):
    world.outcome = outcome
    end = world.run()
    [rec] = world.of("outcome")
    assert end.kind == kind and end.data == {
        "outcome": outcome.value,
        "decision_id": rec["id"],
        "measures_plan": ["raise the KPI by 2 %"],
    }
    assert end.message == f"{outcome.value.upper()}: raise the KPI by 2 % (decision {rec['id']})"
    assert rec["outcome"] is DecisionOutcome.reject and rec["rationale"] == f"{outcome.value}: raise the KPI by 2 %"
    assert world.events == [("releasegate.gate.failed", MODEL, {**end.data, "candidate_version": VERSION})]
    assert (
        world.approvals.asked == [] and world.copies == 0 and world.of("tech")[0]["outcome"] is DecisionOutcome.reject
    )


def test_a_business_reject_ends_the_run_rejected_without_a_release(world):
    world.approvals.script = [Say("pm-anna"), Say("risk-carla", decision="reject")]
    end = world.run()
    [rec] = world.of("outcome")
    assert (end.kind, end.message) == ("rejected", f"risk rejected (decision {rec['id']})")
    assert rec["rationale"] == "RISK rejected the release" and rec["business_approved"] is False
    assert world.copies == 0


def test_refused_approvals_are_recorded_and_the_run_asks_again_rate_limited(world):
    garbage = [
        Say("mallory"),  # not on the allow-list
        Say("pm-anna", signed=False),  # no token
        Say("pm-anna", key="pm-ben"),  # someone else's key
        Say("pm-anna", role="risk"),  # the form says another role
        Say("pm-anna\x00", signed=False),  # a control character
    ]
    world.approvals.script = [*garbage, Say("pm-anna"), Say("risk-carla")]
    _ok(world.run())
    given = world.approvals_given()
    assert len(given) == REFUSALS_PER_BURST + 1 + 2  # five refusals, the rate limit, two approvals
    assert [g[1] for g in given[:5]] == ["mallory", "pm-anna", "pm-anna", "pm-anna", "pm-anna\ufffd"]
    assert all(g[2] for g in given[:5])
    assert "allow-list" in given[0][2] and given[1][2].startswith("token: required")
    assert "pinned key" in given[2][2] and given[3][2].startswith("role: ")
    assert given[5][1] == "releasegate" and given[5][2].startswith("rate_limit: 5 refused PM approvals in a row")
    assert world.slept == [60]  # after a burst of refusals the run waits before it reads input again
    assert given[6:] == [("pm", "pm-anna", None), ("risk", "risk-carla", None)]


def test_an_owner_or_the_requester_cannot_approve(world):
    world.approvals.script = [Say("owner-olga"), Say("ml-engineer"), Say("pm-anna"), Say("risk-carla")]
    _ok(world.run(requested_by="ml-engineer"))
    refusals = [g[2] for g in world.approvals_given()[:2]]
    assert refusals[0].startswith("approver: independence: 'owner-olga' is an owner")
    assert refusals[1].startswith("approver: four eyes: 'ml-engineer' requested this promotion")


def test_a_role_no_one_may_approve_fails_the_run_without_asking(world):
    world.allow = {**world.allow, Role.pm: ["owner-olga", "ml-engineer"]}
    end = world.run(requested_by="ml-engineer")
    [rec] = world.of("outcome")
    assert end.kind == "failed" and end.message.startswith("no eligible PM approver for churn v3")
    assert rec["reason_code"] == "NO_ELIGIBLE_APPROVER" and world.approvals.asked == []


def test_a_joint_ack_expired_by_a_deferral_is_recorded_and_the_run_asks_again(world):
    world.approvals.script = [Say("pm-anna"), Say("risk-carla")]
    world.window = [Deferred()]  # a change freeze: the run is deferred, its approvals stay recorded
    with pytest.raises(Deferred):
        world.run()
    world.clock.advance(hours=30)  # the freeze is over, 30 h after the approvals (the ack lasts 24 h)
    world.approvals.script = [Say("pm-ben"), Say("risk-dan")]
    data = _ok(world.run())  # the rerun finds its approvals, re-checks, then asks again
    [expired] = world.of("outcome")
    assert expired["reason_code"] == "ACK_EXPIRED" and "expired" in expired["rationale"]
    assert "re-check" in expired["rationale"] and world.dossiers == 3
    assert world.approvals.asked == [Role.pm, Role.risk, Role.pm, Role.risk]
    assert [g[1] for g in world.approvals_given()] == ["pm-anna", "risk-carla", "pm-ben", "risk-dan"]
    assert world.of("pending")[0]["ack"] == data["joint_release_ack_ref"]


def test_a_joint_ack_expired_twice_fails_the_run(world):
    world.approvals.script = [Say("pm-anna"), Say("risk-carla"), Say("pm-ben"), Say("risk-dan")]
    world.window = [timedelta(hours=25), timedelta(hours=25)]
    end = world.run()
    assert (end.kind, end.message) == ("failed", "joint release ack expired twice: start a new promotion")
    assert [r["reason_code"] for r in world.of("outcome")] == ["ACK_EXPIRED", "ACK_EXPIRED"] and world.copies == 0


def test_a_run_killed_between_approvals_resumes_where_it_stopped(world):
    world.approvals.script = [Say("pm-anna"), Crash()]
    with pytest.raises(Crash):
        world.run()
    assert world.held == []  # every lock let go
    world.approvals.script = [Say("risk-carla")]
    _ok(world.run())
    assert world.approvals.asked == [Role.pm, Role.risk, Role.risk]  # PM was not asked again
    assert [g[:2] for g in world.approvals_given()] == [("pm", "pm-anna"), ("risk", "risk-carla")]


def test_a_run_killed_in_the_release_is_finished_by_its_rerun_with_one_copy(world):
    world.approvals.script = [Say("pm-anna"), Say("risk-carla")]
    world.crash_in_release = True
    with pytest.raises(Crash):
        world.run()
    data = _ok(world.run())  # approvals restored, nothing asked, the pending release finished
    assert data["converged"] is True and world.copies == 1
    assert world.approvals.asked == [Role.pm, Role.risk]
    # the rerun's first step (finishing interrupted promotions) completed it; its release step found it done
    assert [r["kind"] for r in world.records] == ["tech", "approval", "approval", "pending", "final", "tech"]


def test_a_promotion_crashed_in_another_run_is_finished_first_under_the_alias_lock(world):
    world.approvals.script = [Say("pm-anna"), Say("risk-carla")]
    world.crash_in_release = True
    with pytest.raises(Crash):
        world.run()
    world.run_id = "run-2"  # a new promotion of the model, before its own dossier
    world.approvals.script = [Say("pm-anna"), Say("risk-carla")]
    _ok(world.run())
    kinds = [(r["kind"], r["run"]) for r in world.records]
    assert kinds.index(("final", "run-2")) < kinds.index(("tech", "run-2"))
    assert world.of("final")[0]["pending_run"] == RUN and world.copies == 2

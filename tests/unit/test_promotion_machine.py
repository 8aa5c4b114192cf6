"""The promotion's state machine (``services.promotion_flow``) on in-memory fakes of its ports: no Prefect,
no MLflow, no database. Approvals are really signed (Ed25519) and really checked (``policy.handshake``,
``policy.signatures``); the fake decision log restores a run's approvals as the real one does (after the
last ``ACK_EXPIRED``, about the same model, version and binary, re-checked). A run that dies
(``Crash``) or is deferred (``Deferred``) is run again with the same run id, as Prefect would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from releasegate.decisions import DecisionOutcome
from releasegate.policy.gates import PromotionOutcome
from releasegate.policy.handshake import REFUSALS_PER_BURST, Role
from releasegate.services.promotion_flow import PromotionEnd
from tests.support.promotion_world import MODEL, RUN, VERSION, Crash, Deferred, Say, World


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

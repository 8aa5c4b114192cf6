"""The halt switch's rules (``policy.halt``): two different people, one on-call and one Risk, either
order; a request lapses unconfirmed; a resume needs its own pair."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from releasegate.policy.approvers import ApproverConfig
from releasegate.policy.halt import REQUEST_VALIDITY, HaltEvent, HaltRefused, HaltState, Step, next_step, replay

T0 = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
CONFIG = ApproverConfig(risk=["risk-rita", "risk-rolf"], oncall=["ops-olga", "ops-otto"], pm=["pm-paul"])


def ev(step: Step, person: str, role: str, minutes: int = 0, pinned: str | None = None) -> HaltEvent:
    return HaltEvent(f"d{minutes}-{step}", T0 + timedelta(minutes=minutes), step, person, role, "why", "INC-1", pinned)


def test_a_request_then_a_confirmation_by_the_other_role_halts():
    state = replay([ev(Step.request_halt, "ops-olga", "oncall")], T0)
    assert state.status == "requested" and not state.in_force
    verdict = next_step(state, "halt", "risk-rita", "confirmed", "INC-1", CONFIG)
    assert (verdict.step, verdict.role) == (Step.confirm_halt, "risk")
    halted = replay(
        [ev(Step.request_halt, "ops-olga", "oncall"), ev(Step.confirm_halt, "risk-rita", "risk", 5, "2")], T0
    )
    assert halted.status == "halted" and halted.in_force and halted.pinned_champion == "2"
    assert halted.halted_by == ("ops-olga", "risk-rita")
    assert "HALTED" in halted.sentence() and "v2" in halted.sentence()


def test_risk_may_request_and_oncall_confirm():
    state = replay([ev(Step.request_halt, "risk-rita", "risk")], T0)
    assert next_step(state, "halt", "ops-otto", "ok", "INC-1", CONFIG).step is Step.confirm_halt


@pytest.mark.parametrize(
    ("person", "field", "words"),
    [
        ("ops-olga", "by", "a second person confirms"),  # the requester
        ("ops-otto", "by", "must be on the risk list"),  # same role as the requester
        ("pm-paul", "by", "neither the oncall nor the risk list"),
        ("", "by", "say who you are"),
    ],
)
def test_who_may_not_confirm(person, field, words):
    state = replay([ev(Step.request_halt, "ops-olga", "oncall")], T0)
    with pytest.raises(HaltRefused) as exc:
        next_step(state, "halt", person, "why", "INC-1", CONFIG)
    assert exc.value.field == field and words in exc.value.rule


@pytest.mark.parametrize(("reason", "ticket", "field"), [("", "INC-1", "reason"), ("why", " ", "ticket")])
def test_reason_and_ticket_are_required(reason, ticket, field):
    with pytest.raises(HaltRefused) as exc:
        next_step(HaltState(), "halt", "ops-olga", reason, ticket, CONFIG)
    assert exc.value.field == field


def test_a_request_lapses_unconfirmed():
    events = [ev(Step.request_halt, "ops-olga", "oncall")]
    assert replay(events, T0 + REQUEST_VALIDITY + timedelta(seconds=1)).status == "none"


def test_resume_needs_its_own_pair_and_the_halt_holds_meanwhile():
    events = [
        ev(Step.request_halt, "ops-olga", "oncall"),
        ev(Step.confirm_halt, "risk-rita", "risk", 1, "2"),
        ev(Step.request_resume, "ops-otto", "oncall", 2),
    ]
    state = replay(events, T0 + timedelta(minutes=3))
    assert state.status == "resume_requested" and state.in_force
    with pytest.raises(HaltRefused, match="a second person confirms"):
        next_step(state, "resume", "ops-otto", "fixed", "INC-1", CONFIG)
    assert next_step(state, "resume", "risk-rolf", "fixed", "INC-1", CONFIG).step is Step.confirm_resume
    # an unconfirmed resume lapses back to halted, not to running
    assert replay(events, T0 + REQUEST_VALIDITY + timedelta(minutes=3)).status == "halted"
    done = replay([*events, ev(Step.confirm_resume, "risk-rolf", "risk", 4)], T0 + timedelta(minutes=5))
    assert done.status == "none" and not done.in_force


def test_nothing_to_resume_and_no_second_halt():
    with pytest.raises(HaltRefused, match="not halted"):
        next_step(HaltState(), "resume", "ops-olga", "why", "INC-1", CONFIG)
    halted = replay([ev(Step.request_halt, "ops-olga", "oncall"), ev(Step.confirm_halt, "risk-rita", "risk", 1)], T0)
    with pytest.raises(HaltRefused, match="already halted"):
        next_step(halted, "halt", "ops-otto", "why", "INC-2", CONFIG)
    assert next_step(halted, "resume", "ops-otto", "why", "INC-2", CONFIG).step is Step.request_resume

"""The rule of the joint-ack reminder (``policy.ack_reminders``): due from the lead before the ack expires
up to the expiry, not before, not after; only when every business approval is in and the run has not
ended; a new expiry after an expired ack is a new reminder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from releasegate.policy.ack_reminders import PromotionRun, RunRecord, ack_reminder_due, ack_reminders_due

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
LEAD = timedelta(hours=2)


def approval(role: str, who: str, at: datetime, decision: str = "approve", refused: bool = False) -> RunRecord:
    return RunRecord(kind="approval", at=at, role=role, approver=who, decision=decision, refused=refused)


def outcome(reason_code: str | None, at: datetime) -> RunRecord:
    return RunRecord(kind="promotion", at=at, reason_code=reason_code)


TECH = RunRecord(kind="approval", at=T0 - timedelta(minutes=5), role="tech", approver="releasegate:gates")
PM = approval("pm", "pm-anna", T0)
RISK = approval("risk", "risk-carla", T0 + timedelta(hours=3))  # the later approval
EXPIRES = RISK.at + timedelta(hours=24)


def run(*records: RunRecord, compliance: bool = False, run_id: str = "fr-1") -> PromotionRun:
    return PromotionRun(run_id=run_id, model="churn", version="3", requires_compliance=compliance, records=records)


def test_due_from_the_lead_before_expiry_up_to_the_expiry_itself():
    r = run(TECH, PM, RISK)
    assert ack_reminder_due(r, EXPIRES - LEAD - timedelta(seconds=1), LEAD) is None
    due = ack_reminder_due(r, EXPIRES - LEAD, LEAD)
    assert due is not None and due.expires_at == EXPIRES
    assert due.approvals == (("pm", "pm-anna"), ("risk", "risk-carla"))
    assert due.key == f"ack-reminder:fr-1:{EXPIRES.isoformat()}"
    assert ack_reminder_due(r, EXPIRES, LEAD) == due  # still valid at its expiry
    assert ack_reminder_due(r, EXPIRES + timedelta(seconds=1), LEAD) is None  # expired: re-approval


def test_no_ack_while_an_approval_is_awaited():
    assert ack_reminder_due(run(TECH, PM), T0 + timedelta(hours=23), LEAD) is None
    high = run(TECH, PM, RISK, compliance=True)  # risk_tier high: COMPLIANCE still to come
    assert ack_reminder_due(high, EXPIRES - LEAD, LEAD) is None
    comp = approval("compliance", "comp-eve", RISK.at + timedelta(hours=1))
    due = ack_reminder_due(run(TECH, PM, RISK, comp, compliance=True), comp.at + timedelta(hours=23), LEAD)
    assert due is not None and due.expires_at == comp.at + timedelta(hours=24)


def test_a_refused_submission_is_no_approval():
    refused = approval("risk", "mallory", RISK.at, refused=True)
    assert ack_reminder_due(run(TECH, PM, refused), EXPIRES - LEAD, LEAD) is None


def test_none_for_a_rejected_or_ended_promotion():
    rejected = approval("risk", "risk-carla", RISK.at, decision="reject")
    assert ack_reminder_due(run(TECH, PM, rejected), EXPIRES - LEAD, LEAD) is None
    for code in (None, "NO_ELIGIBLE_APPROVER"):  # released (pending, final), rejected, failed
        ended = run(TECH, PM, RISK, outcome(code, RISK.at + timedelta(hours=1)))
        assert ack_reminder_due(ended, EXPIRES - LEAD, LEAD) is None


def test_after_an_expired_ack_the_new_approvals_have_their_own_reminder():
    expired = outcome("ACK_EXPIRED", EXPIRES + timedelta(hours=1))
    assert ack_reminder_due(run(TECH, PM, RISK, expired), expired.at, LEAD) is None  # asked again: nothing in
    pm2, risk2 = (
        approval("pm", "pm-ben", expired.at + timedelta(hours=1)),
        approval("risk", "risk-dan", expired.at + timedelta(hours=2)),
    )
    again = run(TECH, PM, RISK, expired, pm2, risk2)
    due = ack_reminder_due(again, risk2.at + timedelta(hours=22), LEAD)
    assert due is not None and due.expires_at == risk2.at + timedelta(hours=24)
    assert due.approvals == (("pm", "pm-ben"), ("risk", "risk-dan"))


def test_a_lead_of_zero_turns_reminders_off_and_the_lead_is_honoured():
    r = run(TECH, PM, RISK)
    assert ack_reminder_due(r, EXPIRES - timedelta(minutes=1), timedelta(0)) is None
    assert ack_reminder_due(r, EXPIRES - timedelta(hours=5), timedelta(hours=6)) is not None
    assert ack_reminder_due(r, EXPIRES - timedelta(hours=5), timedelta(hours=4)) is None


def test_only_the_due_runs_of_many():
    due = ack_reminders_due([run(TECH, PM, RISK, run_id="a"), run(TECH, PM, run_id="b")], EXPIRES - LEAD, LEAD)
    assert [d.run_id for d in due] == ["a"]

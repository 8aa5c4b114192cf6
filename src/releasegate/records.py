"""The record vocabulary: one factory per decision kind, and the subjects records are about.

Every decision releasegate writes is built here, never with ``NewDecision(...)`` elsewhere
(``tests/unit/test_records.py`` scans the source). A factory fixes the record's ``decision_kind``
and takes only the refs and the expiry its kind carries; the ``details`` are the keys of the kind's
model in ``releasegate.details`` (``DETAILS[kind]``: the required ones, the optional ones, and any
context a record carries beyond them). ``make_record`` checks them when the record is appended,
naming ``details.<field>`` on a refusal. The details mapping is copied as given, so a record holds
exactly the values its writer passed: the decision log is hash-chained, and the hash covers them.

Subjects (``model:<name>``, ``flow_run:<id>``, ``promotion:<run id>`` ...) are spelled by the
``*_subject`` helpers below, so writers and readers of a subject agree on it.

Pure: no I/O; the timestamp and the id are stamped by the log (``make_record``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision
from releasegate.details import EnrolmentInvitationDetails

Details = Mapping[str, Any]

# -- subjects ----------------------------------------------------------------------------------------

APPROVERS_CONFIG_SUBJECT = "approvers-config"  # the one governed approvers config


def model_subject(model: str) -> str:
    """A model: its retrains, rollbacks, EOD verdicts, incidents."""
    return f"model:{model}"


def model_version_subject(model: str, version: str) -> str:
    """One version of a model: a promotion exception granted for it."""
    return f"model:{model}:v{version}"


def flow_run_subject(flow_run_id: object) -> str:
    """A Prefect flow run: its deferrals, overrides, late-run skips, schedule rules, refusals."""
    return f"flow_run:{flow_run_id}"


def promotion_subject(flow_run_id: str) -> str:
    """One promotion (the flow run that carries it): its approvals and promotion records."""
    return f"promotion:{flow_run_id}"


def deployment_subject(deployment: str) -> str:
    """A deployment an event starts."""
    return f"deployment:{deployment}"


def event_subject(event_type: str) -> str:
    """An event refused before a deployment was known for it."""
    return f"event:{event_type}"


def deferral_storm_subject(pool: str, queue: str) -> str:
    """The deferral-storm incidents of one queue of a pool."""
    return f"deferral-storm:{pool}/{queue}"


def operations_week_subject(pool: str, week_start: date | datetime) -> str:
    """The weekly operational review of a pool's scheduling (``week_start``: the week's Monday)."""
    return f"operations:{pool}:week:{week_start:%Y-%m-%d}"


def notification_subject(flow_run_id: str) -> str:
    """The notices sent to the approvers of one promotion run."""
    return f"notification:{flow_run_id}"


# -- factories ---------------------------------------------------------------------------------------


def _new(
    kind: DecisionKind,
    decision_outcome: DecisionOutcome,
    decision_rationale: str,
    subject: str,
    actor: str,
    details: Details,
    **fields: Any,
) -> NewDecision:
    return NewDecision(
        decision_kind=kind,
        decision_outcome=decision_outcome,
        decision_rationale=decision_rationale,
        subject=subject,
        actor=actor,
        details=dict(details),
        **fields,
    )


def promotion(
    *,
    decision_outcome: DecisionOutcome,
    decision_rationale: str,
    subject: str,
    actor: str,
    details: Details,
    tech_gate_report_ref: str | None = None,
    pm_gate_ref: str | None = None,
    risk_gate_ref: str | None = None,
    joint_release_ack_ref: str | None = None,
    rollback_plan_ref: str | None = None,
) -> NewDecision:
    """A promotion: a gate outcome or a step of a binary release (``PromotionDetails``). Accepted, it
    needs every ref; rejected, the tech gate report."""
    return _new(
        DecisionKind.promotion,
        decision_outcome,
        decision_rationale,
        subject,
        actor,
        details,
        tech_gate_report_ref=tech_gate_report_ref,
        pm_gate_ref=pm_gate_ref,
        risk_gate_ref=risk_gate_ref,
        joint_release_ack_ref=joint_release_ack_ref,
        rollback_plan_ref=rollback_plan_ref,
    )


def approval(
    *,
    decision_outcome: DecisionOutcome,
    decision_rationale: str,
    subject: str,
    actor: str,
    details: Details,
    tech_gate_report_ref: str | None = None,
    pm_gate_ref: str | None = None,
) -> NewDecision:
    """One gate's answer in a promotion: TECH (the gate report) or a person's (``ApprovalDetails``)."""
    return _new(
        DecisionKind.approval,
        decision_outcome,
        decision_rationale,
        subject,
        actor,
        details,
        tech_gate_report_ref=tech_gate_report_ref,
        pm_gate_ref=pm_gate_ref,
    )


def deferral(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """A run held back by the capacity gateway, or the sweeper's word on an open deferral
    (``DeferralDetails``)."""
    return _new(DecisionKind.deferral, decision_outcome, decision_rationale, subject, actor, details)


def override(
    *,
    decision_outcome: DecisionOutcome,
    decision_rationale: str,
    subject: str,
    actor: str,
    details: Details,
    exception_expiry: datetime | None = None,
) -> NewDecision:
    """An exception granted, used, expired or refused (``OverrideDetails``). Granted, it needs
    ``exception_expiry`` in the future and ``details.ticket_ref``."""
    return _new(
        DecisionKind.override,
        decision_outcome,
        decision_rationale,
        subject,
        actor,
        details,
        exception_expiry=exception_expiry,
    )


def retrain(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """The retrain gateway's verdict, or a candidate registered by a retrain (``RetrainDetails``)."""
    return _new(DecisionKind.retrain, decision_outcome, decision_rationale, subject, actor, details)


def rollback(
    *,
    decision_outcome: DecisionOutcome,
    decision_rationale: str,
    subject: str,
    actor: str,
    details: Details,
    rollback_plan_ref: str | None = None,
) -> NewDecision:
    """A rollback: refused, pending, final or abandoned (``RollbackDetails``). Accepted, it needs
    ``rollback_plan_ref``."""
    return _new(
        DecisionKind.rollback,
        decision_outcome,
        decision_rationale,
        subject,
        actor,
        details,
        rollback_plan_ref=rollback_plan_ref,
    )


def manual_run(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """A manual run admitted or refused (``ManualRunDetails``)."""
    return _new(DecisionKind.manual_run, decision_outcome, decision_rationale, subject, actor, details)


def event(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """An event taken in, a run created for it, or the event refused (``EventDetails``)."""
    return _new(DecisionKind.event, decision_outcome, decision_rationale, subject, actor, details)


def late_run(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """A run skipped because it started too late (``LateRunDetails``)."""
    return _new(DecisionKind.late_run, decision_outcome, decision_rationale, subject, actor, details)


def monitoring(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """An EOD verdict on a model's business day (``MonitoringDetails``)."""
    return _new(DecisionKind.monitoring, decision_outcome, decision_rationale, subject, actor, details)


def refusal(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """A write or a record releasegate refused, naming the field and the rule (``RefusalDetails``)."""
    return _new(DecisionKind.refusal, decision_outcome, decision_rationale, subject, actor, details)


def gate_failure_ack(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """Someone acknowledged a held or rejected promotion (``GateFailureAckDetails``)."""
    return _new(DecisionKind.gate_failure_ack, decision_outcome, decision_rationale, subject, actor, details)


def incident(
    *,
    decision_outcome: DecisionOutcome,
    decision_rationale: str,
    subject: str,
    actor: str,
    details: Details,
    tech_gate_report_ref: str | None = None,
    rollback_plan_ref: str | None = None,
) -> NewDecision:
    """An incident releasegate opened, escalated or closed (``IncidentDetails``)."""
    return _new(
        DecisionKind.incident,
        decision_outcome,
        decision_rationale,
        subject,
        actor,
        details,
        tech_gate_report_ref=tech_gate_report_ref,
        rollback_plan_ref=rollback_plan_ref,
    )


def schedule(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """A schedule rule (DST, catch-up, one run per occurrence, crash retry) that moved or dropped a run
    (``ScheduleDetails``)."""
    return _new(DecisionKind.schedule, decision_outcome, decision_rationale, subject, actor, details)


def rollback_request(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """An EOD verdict's rollback, bound to the one run it created (``RollbackRequestDetails``)."""
    return _new(DecisionKind.rollback_request, decision_outcome, decision_rationale, subject, actor, details)


def approvers_config(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """A step of the governed approvers config: trusted once, proposed, approved, in force, refused
    (``ApproversConfigDetails``)."""
    return _new(DecisionKind.approvers_config, decision_outcome, decision_rationale, subject, actor, details)


def enrolment_invitation(
    *, decision_rationale: str, subject: str, actor: str, details: EnrolmentInvitationDetails
) -> NewDecision:
    """An admin's one-time passkey enrolment invitation (an ``approvers_config`` step, status ``invited``)."""
    return _new(
        DecisionKind.approvers_config,
        DecisionOutcome.accept,
        decision_rationale,
        subject,
        actor,
        details.model_dump(mode="json", exclude_none=True),
    )


def operational_report(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """The weekly operational-risk review of a pool's scheduling (``OperationalReportDetails``)."""
    return _new(DecisionKind.operational_report, decision_outcome, decision_rationale, subject, actor, details)


def notification(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """A notice to a role's approvers that a run waits for them, delivered (accept) or not (reject, with
    the error) on one channel (``NotificationDetails``)."""
    return _new(DecisionKind.notification, decision_outcome, decision_rationale, subject, actor, details)


def halt(
    *, decision_outcome: DecisionOutcome, decision_rationale: str, subject: str, actor: str, details: Details
) -> NewDecision:
    """A step of a model's two-person halt switch: a halt or resume requested or confirmed (``HaltDetails``)."""
    return _new(DecisionKind.halt, decision_outcome, decision_rationale, subject, actor, details)


def entered(
    kind: DecisionKind,
    *,
    decision_outcome: DecisionOutcome,
    decision_rationale: str,
    subject: str,
    actor: str,
    details: Details,
    tech_gate_report_ref: str | None = None,
    pm_gate_ref: str | None = None,
    risk_gate_ref: str | None = None,
    joint_release_ack_ref: str | None = None,
    rollback_plan_ref: str | None = None,
    exception_expiry: datetime | None = None,
) -> NewDecision:
    """A record of any kind with every field given by a person (``releasegate decisions add``, which
    refuses the trusted kinds before it gets here); the same rules apply when it is appended."""
    return _new(
        kind,
        decision_outcome,
        decision_rationale,
        subject,
        actor,
        details,
        tech_gate_report_ref=tech_gate_report_ref,
        pm_gate_ref=pm_gate_ref,
        risk_gate_ref=risk_gate_ref,
        joint_release_ack_ref=joint_release_ack_ref,
        rollback_plan_ref=rollback_plan_ref,
        exception_expiry=exception_expiry,
    )


FACTORIES: Mapping[DecisionKind, Callable[..., NewDecision]] = {
    DecisionKind.promotion: promotion,
    DecisionKind.deferral: deferral,
    DecisionKind.override: override,
    DecisionKind.retrain: retrain,
    DecisionKind.rollback: rollback,
    DecisionKind.manual_run: manual_run,
    DecisionKind.event: event,
    DecisionKind.late_run: late_run,
    DecisionKind.approval: approval,
    DecisionKind.monitoring: monitoring,
    DecisionKind.refusal: refusal,
    DecisionKind.gate_failure_ack: gate_failure_ack,
    DecisionKind.incident: incident,
    DecisionKind.schedule: schedule,
    DecisionKind.rollback_request: rollback_request,
    DecisionKind.approvers_config: approvers_config,
    DecisionKind.operational_report: operational_report,
    DecisionKind.notification: notification,
    DecisionKind.halt: halt,
}

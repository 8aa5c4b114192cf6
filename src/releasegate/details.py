"""The ``details`` of each decision kind, as typed models: what a writer must give, what a reader gets.

``validate_decision`` refuses a record whose details lack a required field or give one of the wrong
type (naming ``details.<field>``); readers call ``details_of(record)`` and get, e.g., a
``PromotionDetails`` whose ``status`` is a ``PromotionStatus`` instead of ``record.details.get("status")``.

Models allow extra keys (``extra="allow"``): records carry more context than their kind requires, and
records written before a field existed stay readable. Numbers given where text is expected (a model
version ``3``) are read as text. Pure: no I/O.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from releasegate.kinds import DecisionKind


class PromotionStatus(StrEnum):
    """Steps of a binary promotion (``services.release``); ``incident`` only in logs before 0005."""

    pending = "pending"
    final = "final"
    failed = "failed"
    abandoned = "abandoned"
    incident = "incident"


class RollbackStatus(StrEnum):
    pending = "pending"
    final = "final"
    abandoned = "abandoned"


class KindDetails(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)

    seal: str | None = None  # the service seal (``store.trust``), on records the service path wrote


class PromotionDetails(KindDetails):
    model_name: str
    candidate_version: str
    status: PromotionStatus | None = None  # None: a gate outcome (hold / reject), not a binary step
    promotion_outcome: str | None = None  # promote | hold | reject
    pending_decision_id: str | None = None
    prod_model: str | None = None
    staging_model: str | None = None
    prod_version: str | None = None
    previous_champion: str | None = None
    candidate_sha256: str | None = None
    prod_sha256: str | None = None
    gate_report_sha256: str | None = None


class DeferralDetails(KindDetails):
    deferral_reason_code: str
    next_evaluation_at: Any
    predicted_start_at: str | None = None  # a capacity deferral's predicted start (ISO, UTC), if predicted


class OverrideDetails(KindDetails):
    ticket_ref: str | None = None  # required when the override is granted (``validate_decision``)


class RetrainDetails(KindDetails):
    trigger: str


class RollbackDetails(KindDetails):
    previous_version: str
    new_version: str
    status: RollbackStatus | None = None  # None: a refused request
    method: str | None = None  # full | canary
    model_name: str | None = None
    pending_decision_id: str | None = None


class ManualRunDetails(KindDetails):
    requested_by: str
    reason_code: str
    target_environment: str


class EventDetails(KindDetails):
    event_id: str
    event_type: str
    idempotency_key: str


class LateRunDetails(KindDetails):
    lateness_seconds: float
    late_run_mode: str


class ScheduleDetails(KindDetails):
    deployment: str
    rule: str  # dst | catch_up | duplicate_occurrence
    action: str  # skip | move


class ApprovalDetails(KindDetails):
    role: str  # tech | pm | risk | compliance; gate_failure_ack in logs before 0005
    approver: str
    model_name: str
    candidate_version: str
    candidate_sha256: str | None = None
    gate_report: dict[str, Any] | None = None  # TECH records: the whole gate report
    gate_report_sha256: str | None = None


class MonitoringDetails(KindDetails):
    model_name: str
    business_date: str
    action: str
    reason_code: str


class RollbackRequestDetails(KindDetails):
    model_name: str
    business_date: str
    monitoring_decision_id: str
    champion: str  # the champion the verdict judged
    method: str  # full | canary
    version: str  # the version the rollback acts on (the champion, or the canary's challenger)
    flow_run_id: str  # the rollback run it created


class RefusalDetails(KindDetails):
    field: str
    rule: str


class GateFailureAckDetails(KindDetails):
    acknowledged_decision_id: str
    model_name: str
    acknowledged_by: str | None = None
    note: str | None = None


class IncidentDetails(KindDetails):
    incident_for: str
    severity: str
    incident_kind: str | None = None
    model_name: str | None = None


class ApproversConfigDetails(KindDetails):
    status: str  # trusted_once | proposed | approved | in_force | refused
    digest: str  # SHA-256 of the config (``policy.approvers.config_digest``)


class EnrolmentInvitationDetails(ApproversConfigDetails):
    """An admin's signed one-time passkey enrolment invitation (status ``invited``); ``digest`` is the
    SHA-256 of the invitation (``services.invitations.invitation_digest``), never of the code itself."""

    name: str  # the approver invited to enrol
    admin: str  # who issued and signed it
    code_sha256: str  # SHA-256 of the one-time code (the code is never recorded)
    expires_at: str  # ISO UTC
    signature: dict[str, Any]  # the admin's signed ``ConfigStatement`` (action ``invite``)


class OperationalReportDetails(KindDetails):
    week_start: str  # ISO date of the week's Monday (UTC)
    status: str  # ok | missed | incident | no_runs
    scheduled_runs: int
    started_runs: int
    frequently_deferred: list[str]


class NotificationDetails(KindDetails):
    key: str  # the pause: ``<run id>:<role>:<round>`` (one notice per key and channel)
    channel: str  # email | webhook
    role: str
    run_id: str | None = None
    approvers: list[str] = []
    error: str | None = None  # why it was not delivered (outcome reject)


class HaltDetails(KindDetails):
    """A step of a model's halt switch (``policy.halt``): who, which step, why, under which ticket."""

    model_name: str
    step: str  # request_halt | confirm_halt | request_resume | confirm_resume
    person: str  # who took the step (the CLI's --by, the console's signed-in user)
    role: str  # oncall | risk: the list of the governed approvers config the step counts for
    ticket_ref: str
    reason: str = ""  # why, as the person gave it
    request_decision_id: str | None = None  # a confirmation: the request it confirms
    pinned_champion: str | None = None  # a confirmed halt: the champion version it pins
    paused_schedules: list[str] = []  # a confirmed halt: the schedules it paused; a resume: those it resumed


DETAILS: dict[DecisionKind, type[KindDetails]] = {
    DecisionKind.promotion: PromotionDetails,
    DecisionKind.deferral: DeferralDetails,
    DecisionKind.override: OverrideDetails,
    DecisionKind.retrain: RetrainDetails,
    DecisionKind.rollback: RollbackDetails,
    DecisionKind.manual_run: ManualRunDetails,
    DecisionKind.event: EventDetails,
    DecisionKind.late_run: LateRunDetails,
    DecisionKind.approval: ApprovalDetails,
    DecisionKind.monitoring: MonitoringDetails,
    DecisionKind.refusal: RefusalDetails,
    DecisionKind.gate_failure_ack: GateFailureAckDetails,
    DecisionKind.incident: IncidentDetails,
    DecisionKind.schedule: ScheduleDetails,
    DecisionKind.rollback_request: RollbackRequestDetails,
    DecisionKind.approvers_config: ApproversConfigDetails,
    DecisionKind.operational_report: OperationalReportDetails,
    DecisionKind.notification: NotificationDetails,
    DecisionKind.halt: HaltDetails,
}


def required_fields(kind: DecisionKind) -> tuple[str, ...]:
    return tuple(name for name, f in DETAILS[kind].model_fields.items() if f.is_required())


class _Record(Protocol):
    """What ``details_of`` reads of a record (a ``decisions.DecisionRecord``; ``decisions`` imports this
    module to check details, so this one names no type of it)."""

    @property
    def decision_kind(self) -> DecisionKind: ...
    @property
    def details(self) -> dict[str, Any]: ...


def details_of(record: _Record) -> Any:
    """``record.details`` as the model of its kind (typed as ``Any`` so callers may name the subclass)."""
    return DETAILS[record.decision_kind].model_validate(record.details)

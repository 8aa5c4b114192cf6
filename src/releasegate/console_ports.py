"""What the console receives (``create_app``): the use cases it calls, as Protocols.

The console holds no rule of its own: the approvals desk (``services.approval_desk``) reads the paused
promotions and resumes them as the CLI does, the directory is the governed approvers config
(``services.approvers``), the journal records sign-ins and refusals in the decision log. Unit tests
pass in-memory fakes; ``bootstrap.console_app`` wires the real ones.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from releasegate.clock import Clock
from releasegate.console_settings import ConsoleOidcSettings
from releasegate.model_views import EvidenceDownload, ModelPage, ModelRow
from releasegate.policy.approvers import ApproverConfig
from releasegate.policy.halt import Action, HaltState
from releasegate.policy.handshake import Handshake, Role
from releasegate.policy.passkeys import Passkey


@dataclass(frozen=True)
class PendingApproval:
    """A promotion run paused for a business approval, with what the approver reviews."""

    run_id: str
    handshake: Handshake  # the approvals given so far, who may approve, the gate report's hash
    awaiting: Role
    paused_since: datetime | None = None
    gate_report: dict[str, Any] | None = None  # the TECH gate report as recorded (GateReport JSON)
    figures: dict[str, Any] = field(default_factory=dict)  # policy.report_figures
    no_eligible_approver: str | None = None  # why nobody can give the awaited approval, if so


class ApprovalDesk(Protocol):
    def pending(self) -> list[PendingApproval]:
        """Every promotion waiting for a business approval, oldest pause first."""
        ...

    def page(self, roles: Collection[Role] | None, start: int, count: int) -> tuple[list[PendingApproval], int]:
        """The promotions awaiting one of ``roles`` (None: any role), oldest pause first, from ``start``
        (at most ``count`` of them), and how many await those roles in all."""
        ...

    def item(self, run_id: str) -> PendingApproval | None:
        """The promotion run ``run_id`` when it waits for a business approval."""
        ...

    def record_refusal(self, item: PendingApproval, role: Role, refusal: str, raw: dict[str, Any]) -> str:
        """Record a refused approval of ``item`` (the promotion's subject, as the CLI does); its id."""
        ...

    def submit(self, item: PendingApproval, run_input: dict[str, Any]) -> str:
        """Resume the paused run with the approval form's input; what the run recorded (or that it has
        not yet). ``Refused`` when the run does not take it."""
        ...


class Directory(Protocol):
    def config(self) -> ApproverConfig:
        """The governed approvers config in force."""
        ...

    def check_invitation(self, name: str, code: str) -> str:
        """The id of the valid enrolment invitation with ``code`` for ``name`` (issued for that name,
        unexpired, its admin's signature good against the config in force, unused); ``Refused`` (not
        recorded: the console records it) otherwise."""
        ...

    def enrol(self, name: str, passkey: Passkey, actor: str, invitation: str | None = None) -> tuple[str, list[str]]:
        """Record a passkey enrolment as a proposal naming the ``invitation`` it used (None: the enroller
        was signed in as ``name``); (proposal id, changes). ``Refused`` (recorded)."""
        ...


class Journal(Protocol):
    def record(self, what: str, actor: str, accepted: bool, rationale: str, **details: Any) -> str:
        """Record a sign-in (accepted) or a refusal (``field``/``rule`` in details); the decision id."""
        ...


class Halts(Protocol):
    """A model's two-person halt switch (``services.halt``)."""

    def state(self, model: str) -> HaltState | None:
        """The model's halt state now; None when the model manifest does not name it."""
        ...

    def act(self, model: str, action: Action, person: str, reason: str, ticket: str) -> str:
        """``person``'s halt or resume of ``model`` (a request, or the confirmation of the open one): the
        sentence saying which and what remains. ``HaltRefused`` (recorded, ``decision_id`` set) otherwise."""
        ...


@dataclass(frozen=True)
class DeferralView:
    """An open deferral as ``releasegate deferrals`` lists it, with its SLA state now (``policy.deferrals``)."""

    flow_run_id: str
    deployment: str
    reason_code: str
    first_deferred_at: datetime
    next_evaluation_at: datetime
    predicted_start_at: datetime | None  # None: not predicted (a window or an upstream decides, not a slot)
    attempts: int
    waited_minutes: int
    sla: str  # ok | alert | incident
    alert_minutes: int = 30
    incident_minutes: int = 60
    explanation: str = ""


@dataclass(frozen=True)
class GateFailureView:
    """A held or rejected promotion of the last 7 days (``services.gate_failures``)."""

    decision_id: str
    at: datetime
    model_name: str
    candidate_version: str
    outcome: str
    rationale: str
    acknowledged: bool
    incident: bool  # escalated to a P1 incident (nobody acknowledged it within 30 minutes)
    waited_minutes: int = 0
    ack_minutes: int = 30


@dataclass(frozen=True)
class IncidentView:
    """An incident releasegate opened, and whether the log records it closed."""

    decision_id: str  # the record that opened it
    at: datetime
    kind: str  # deferral_storm | gate_failure_unacknowledged | alias_guard | scheduled_start_kpi | ...
    severity: str
    subject: str
    summary: str  # the newest record's rationale
    state: str  # open | closed | recorded (a one-shot incident: its kind has no closing record)
    closed_at: datetime | None = None
    closed_by: str | None = None  # the decision that closed it


class Operations(Protocol):
    def deferrals(self) -> list[DeferralView]:
        """The open deferrals, oldest first deferral first."""
        ...

    def gate_failures(self) -> list[GateFailureView]:
        """The gate failures of the lookback window, newest first."""
        ...

    def incidents(self) -> list[IncidentView]:
        """The incidents of the lookback window, newest first: open ones and closed ones."""
        ...

    def acknowledge(self, decision_id: str, by: str, note: str) -> str:
        """Acknowledge a gate failure as ``by`` (as ``releasegate gate-failures ack`` does); the decision id.
        ``Refused`` (not recorded: the console records it) for an unknown or already acknowledged one."""
        ...


@dataclass(frozen=True)
class CheckpointView:
    file: str
    last_seq: int | None
    last_hash: str
    created_at: datetime | None
    problem: str | None = None  # None: signed by the service key and honoured by the log


@dataclass(frozen=True)
class VerifyStatus:
    """The newest verification of the chain: a console-started one (running or recorded), else none."""

    state: str  # never | running | intact | broken
    started_at: datetime | None = None
    finished_at: datetime | None = None
    by: str | None = None
    records: int | None = None
    seconds: float | None = None
    finding: str | None = None
    decision_id: str | None = None  # the record of its result


@dataclass(frozen=True)
class EvidenceLink:
    model: str
    version: str
    outcome: str  # the newest promotion outcome recorded for it
    at: datetime


@dataclass(frozen=True)
class AuditOverview:
    records: int  # the head's seq
    head_hash: str
    checkpoints: list[CheckpointView]  # the newest first
    checkpoint_total: int
    verify: VerifyStatus
    estimate_seconds: float | None  # how long a verification of the whole chain is expected to take
    versions: list[EvidenceLink] = field(default_factory=list)


class AuditDesk(Protocol):
    def overview(self, last: int = 10) -> AuditOverview:
        """Cheap: the head, the ``last`` checkpoints (each checked: one indexed read), the newest verification."""
        ...

    def start_verify(self, by: str) -> VerifyStatus:
        """Start a verification of the chain in the background (one at a time); its status now. Its result
        is recorded in the decision log when it ends."""
        ...

    def export_lines(self) -> Iterator[str]:
        """The JSON Lines of ``releasegate audit export`` (records, then checkpoints), read in batches."""
        ...


class ModelPages(Protocol):
    """The model pages' reads (``services.model_pages``) and a version's evidence pack."""

    def inventory(self) -> list[ModelRow]:
        """Every governed model (the manifest's), by name."""
        ...

    def page(self, name: str) -> ModelPage | None:
        """The page of model ``name``; None when neither the manifest nor the decision log knows it."""
        ...

    def evidence(self, name: str, version: str, actor: str) -> EvidenceDownload:
        """The signed evidence pack of ``name`` v``version`` as one archive (what ``releasegate evidence
        export`` writes), built for ``actor``; ``Refused`` (recorded) when the log holds no promotion of it."""
        ...


@dataclass(frozen=True)
class ConsoleSettings:
    rp_id: str = "localhost"  # the WebAuthn relying party id: the console's host name
    origin: str = "http://localhost:4300"  # scheme://host[:port] the browser shows
    secret_key: str = ""  # signs the session cookie; empty: a random key per process
    idle_timeout_s: int = 15 * 60
    challenge_ttl_s: int = 300  # a sign-in or enrolment must finish within this
    oidc: ConsoleOidcSettings | None = None  # sign-in with the identity provider (console.oidc); None: off


@dataclass(frozen=True)
class ConsolePorts:
    desk: ApprovalDesk
    directory: Directory
    journal: Journal
    clock: Clock
    operations: Operations | None = None  # the operations page (``console.operations``); None: not served
    audit: AuditDesk | None = None  # the audit page (``console.audit``); None: not served
    halts: Halts | None = None  # the halt switch (console.halts); None: its pages answer 404
    models: ModelPages | None = None  # the model pages (``console.models``); None: not served

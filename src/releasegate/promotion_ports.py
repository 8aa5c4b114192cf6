"""The ports of the promotion use case (``services.promotion_flow``): what its state machine needs from
the orchestrator and from the decision log, as Protocols it receives.

Prefect implements the orchestrator's side (``adapters.prefect_promotion``): a pause for an approval
(``pause_flow_run(wait_for_input=…)``), the model's and its aliases' locks and the deployment's work
slot (global concurrency limits), markdown artifacts, events, the release window (the capacity
gateway, which defers the run in place) and the two subflows. The decision log's side
(``PromotionRecords``) is the promotion's record keeping in ``services.promotion`` and
``services.release``. A unit test passes in-memory fakes of all of them
(``tests/unit/test_promotion_machine.py``).

``Notifications`` tells a role's eligible approvers that a run waits for them (``Notifier``: e-mail,
a chat webhook), once per pause, each attempt recorded (``NotificationLog``); ``None``: no notices.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from releasegate.clock import Clock
from releasegate.decisions import DecisionOutcome
from releasegate.policy.gates import GateReport
from releasegate.policy.handshake import Approval, Handshake, Role
from releasegate.policy.passkey_approvals import AnySigned


@dataclass(frozen=True)
class ApprovalForm:
    """What an approver submitted: the form's fields (``approver``, ``decision``, ``reference``,
    ``statement``, ``comment`` and the ``role`` it is for) and the signed token, unchecked."""

    fields: dict[str, Any]
    token: str = ""


class Approvals(Protocol):
    def ask(self, role: Role, h: Handshake, timeout_s: int) -> ApprovalForm:
        """Wait (up to ``timeout_s``) for one submission of ``role``'s approval of ``h``'s release: a fresh
        request each call. Raises whatever the orchestrator raises when no one answers in time."""
        ...


class Locks(Protocol):
    def model(self, model: str) -> AbstractContextManager[Any]:
        """One promotion of ``model`` at a time, held for the whole run (approval waits included)."""
        ...

    def aliases(self, model: str) -> AbstractContextManager[Any]:
        """One alias change of ``model`` at a time (the binary step, finishing a crashed promotion)."""
        ...

    def work(self) -> AbstractContextManager[Any]:
        """A slot of the deployment's concurrency limit around work (never around an approval wait)."""
        ...


class Artifacts(Protocol):
    def markdown(self, key: str, markdown: str, description: str) -> str:
        """Attach ``markdown`` to the promotion run under ``key``; returns the artifact's id."""
        ...


class Events(Protocol):
    def emit(self, event: str, model: str, payload: dict[str, Any]) -> None:
        """Emit ``event`` about the promotion run and ``model``."""
        ...


class ReleaseWindow(Protocol):
    def admit(self) -> None:
        """Return when the release may go ahead now; otherwise defer the run (then this does not
        return: the orchestrator runs the promotion again later, its approvals kept in the log)."""
        ...


class Checks(Protocol):
    """The dossier and the gate report, as JSON-able dicts with their markdown (Prefect: two subflows)."""

    def dossier(self, model: str, version: str, requested_by: str) -> dict[str, Any]:
        """``{"dossier": Dossier as JSON, "markdown": str}``."""
        ...

    def gates(self, dossier: dict[str, Any]) -> dict[str, Any]:
        """``{"report": GateReport as JSON, "markdown": str}``."""
        ...


class PromotionRecords(Protocol):
    """The promotion's records in the decision log, and the handshake they restore."""

    def finish_unfinished(self, model: str) -> list[dict[str, Any]]: ...
    def record_tech(
        self,
        run_id: str,
        report: GateReport,
        report_ref: str,
        candidate_sha256: str,
        figures: dict[str, Any] | None = None,
    ) -> None: ...
    def record_outcome(
        self,
        run_id: str,
        report: GateReport,
        report_ref: str,
        outcome: DecisionOutcome,
        rationale: str,
        **details: Any,
    ) -> str: ...
    def handshake_base(self, model: str, version: str, requested_by: str, **facts: Any) -> Handshake: ...
    def restore_handshake(self, run_id: str, base: Handshake) -> Handshake: ...
    def current_rules(self, h: Handshake) -> Handshake: ...
    def record_approval(
        self,
        run_id: str,
        h: Handshake,
        role: Role,
        a: Approval | None,
        refusal: str | None,
        raw: dict[str, Any],
        signed: AnySigned | None = None,
    ) -> str: ...
    def release(
        self, run_id: str, report: GateReport, report_ref: str, h: Handshake, ack_ref: str, candidate_sha256: str
    ) -> dict[str, Any]:
        """The binary promotion (crash-safe, idempotent per run: ``services.release.binary_promotion``)."""
        ...


@dataclass(frozen=True)
class Notice:
    """What a paused run tells its approvers: who (``approvers``, by name) may give ``role``'s approval of
    ``model`` v``version`` in run ``run_id``, and where (``link``: the console's inbox item). ``key``
    names the pause: one notice per key and channel.

    An ``escalation`` (``services.escalation_notices``) uses the same fields for an operations event: its
    ``run_id`` is what it concerns (a flow run, a queue, a gate failure), ``role`` the list its addressees
    come from (``overrides``, ``exceptions``), ``summary`` its headline and ``facts`` its details. A
    ``reminder`` (``services.ack_reminders``: the joint ack expires soon) keeps ``run_id``, ``model`` and
    ``version`` of the promotion and uses ``summary`` and ``facts`` the same way."""

    key: str
    run_id: str
    role: str
    model: str
    version: str
    requested_by: str
    approvers: tuple[str, ...]
    link: str
    kind: str = "approval"  # or "escalation", "reminder" (``services.ack_reminders``)
    summary: str = ""
    facts: tuple[str, ...] = ()


class Notifier(Protocol):
    channel: str  # "email", "webhook": one record per notice and channel

    def send(self, notice: Notice) -> str | None:
        """Deliver ``notice``; the error as text when it could not be delivered (never raises)."""
        ...


class NotificationLog(Protocol):
    def pause_round(self, run_id: str) -> int:
        """Which round of approval requests the run is in: 0, then one more after each expired joint ack
        (the same after a restart of the run, so a restarted pause keeps its key)."""
        ...

    def sent(self, notice: Notice, channel: str) -> bool:
        """Whether a notice with ``notice.key`` was already attempted on ``channel`` (delivered or not)."""
        ...

    def record(self, notice: Notice, channel: str, error: str | None) -> str:
        """Record one attempt: delivered (``error`` None) or not; returns the decision id."""
        ...


@dataclass(frozen=True)
class Notifications:
    notifiers: tuple[Notifier, ...]
    log: NotificationLog
    console_url: str  # the console's base URL: a notice links to ``<console_url>/inbox?run=<run id>#<run id>``


@dataclass(frozen=True)
class PromotionPorts:
    """Everything one promotion run's use case receives."""

    run_id: str
    approvals: Approvals
    locks: Locks
    artifacts: Artifacts
    events: Events
    window: ReleaseWindow
    checks: Checks
    records: PromotionRecords
    clock: Clock
    sleep: Callable[[float], None]
    logger: logging.Logger | logging.LoggerAdapter[Any] = field(
        default_factory=lambda: logging.getLogger("releasegate.promotion")
    )
    approval_cooldown_seconds: int = 60
    # errors reading the governed config (``adapters.config.ConfigError``, a ValueError): they fail the
    # run; they are not an approver's input to record and refuse
    config_errors: tuple[type[Exception], ...] = ()
    notifications: Notifications | None = None

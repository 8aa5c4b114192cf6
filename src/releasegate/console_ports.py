"""What the console receives (``create_app``): the use cases it calls, as Protocols.

The console holds no rule of its own: the approvals desk (``services.approval_desk``) reads the paused
promotions and resumes them as the CLI does, the directory is the governed approvers config
(``services.approvers``), the journal records sign-ins and refusals in the decision log. Unit tests
pass in-memory fakes; ``bootstrap.console_app`` wires the real ones.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from releasegate.clock import Clock
from releasegate.console_settings import ConsoleOidcSettings
from releasegate.model_views import EvidenceDownload, ModelPage, ModelRow
from releasegate.policy.approvers import ApproverConfig
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
    models: ModelPages | None = None  # the model pages (``console.models``); None: not served

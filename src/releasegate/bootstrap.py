"""The composition root: settings, the decision log, the clock, and the ports services receive.

Flows, the CLI and the tools get their handles here; ``ports()`` wires the real adapters (MLflow
registry, sealed decision log, process clock) into the ``releasegate.ports.Ports`` a service takes.
Tests swap the clock (and only the clock) with ``use_clock``.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial

from releasegate.app import App
from releasegate.clock import Clock, SystemClock
from releasegate.settings import Settings
from releasegate.settings import project_root as project_root  # where it always was for callers
from releasegate.store.trust import SealedDecisionLog

_clock: Clock = SystemClock()


def clock() -> Clock:
    return _clock


@contextmanager
def use_clock(c: Clock):
    global _clock
    old, _clock = _clock, c
    try:
        yield c
    finally:
        _clock = old


def settings() -> Settings:
    return Settings()


def decision_log(url: str | None = None) -> SealedDecisionLog:
    """The service path's log: every record it appends carries the service seal (``releasegate.store.trust``)."""
    s = settings()
    return SealedDecisionLog(url or s.resolved_database_url, clock=_ClockProxy(), key_loader=s.service_key_bytes)


def live_clock() -> Clock:
    """A clock that reads the process clock at each call (so ``use_clock`` reaches it too)."""
    return _ClockProxy()


class _ClockProxy:
    """Reads the current process clock at call time, so ``use_clock`` reaches existing logs too."""

    def now(self):
        return _clock.now()


def scheduling_store(url: str | None = None):
    from releasegate.store.scheduling_store import SchedulingStore

    return SchedulingStore(url or settings().resolved_database_url)


def console_app(origin: str):
    """The governance console (``releasegate console``) over the real approvals desk, the governed approvers
    config and the decision log; ``origin`` is what the browser shows (its host is the WebAuthn rp id).
    ``RELEASEGATE_CONSOLE_OIDC_*`` (``ConsoleOidcSettings``) turns on the sign-in with an identity provider."""
    import os
    from urllib.parse import urlsplit

    from releasegate.console import create_app
    from releasegate.console_ports import ConsolePorts, ConsoleSettings
    from releasegate.console_settings import ConsoleOidcSettings
    from releasegate.services.approval_desk import DecisionJournal, GovernedDirectory
    from releasegate.services.halt import HaltDesk

    the_app = app()
    directory = GovernedDirectory(the_app)
    ports = ConsolePorts(
        desk=approval_desk(the_app, directory.config),
        directory=directory,
        journal=DecisionJournal(the_app.log),
        clock=_ClockProxy(),
        operations=operations_desk(the_app),
        audit=audit_desk(the_app),
        halts=HaltDesk(halt_ports(the_app)),
    )
    settings = ConsoleSettings(
        rp_id=urlsplit(origin).hostname or "localhost",
        origin=origin.rstrip("/"),
        secret_key=os.environ.get("RELEASEGATE_CONSOLE_SECRET", ""),
        oidc=oidc if (oidc := ConsoleOidcSettings()).enabled else None,
    )
    return create_app(ports, settings)


def operations_desk(the_app: App):
    """The console's operations page (``services.operations_desk``): the deferrals the gateway recorded for
    Prefect's runs, the gate failures and incidents of the decision log; the SLA minutes of the capacity
    policy (its block when a Prefect API is configured, else its file; 30/60 when neither reads)."""
    import os

    from releasegate.adapters.config import load_gateway_config
    from releasegate.services.operations_desk import OperationsDesk

    def sla_minutes() -> tuple[int, int]:
        try:
            config = load_gateway_config(use_block=bool(os.environ.get("PREFECT_API_URL")))
        except Exception:  # an unreadable policy must not take the page down: the gateway's defaults
            return 30, 60
        return config.sla_alert_minutes, config.sla_incident_minutes

    return OperationsDesk(the_app, sla_minutes)


def audit_desk(the_app: App):
    """The console's audit page (``services.audit_desk``): the sealed log, the checkpoint folder and the
    service's checkpoint key (its public half checks them)."""
    from releasegate.services.audit_desk import LogAuditDesk

    s = the_app.settings
    return LogAuditDesk(the_app.log, the_app.clock, s.resolved_checkpoint_dir, s.signing_key().public_key())


def approval_desk(the_app: App, config=None):
    """The approvals desk (``services.approval_desk``) over Prefect's paused runs, the decision log, the
    governed approvers config (``config``: how to read it; the console's directory by default), the
    models manifest and MLflow."""
    from releasegate.adapters import mlflow_registry as registry
    from releasegate.adapters.config import model_spec
    from releasegate.adapters.prefect_manual import awaiting_among, awaiting_approval, resume_paused
    from releasegate.services.approval_desk import GovernedDirectory, PrefectApprovalDesk
    from releasegate.services.promotion import record_approval

    def version_users(model: str, version: str) -> list[str]:
        return registry.version_users(registry.model_name("staging", model), version)

    return PrefectApprovalDesk(
        the_app.log,
        paused=awaiting_approval,
        among=awaiting_among,
        resume=resume_paused,
        config=config or GovernedDirectory(the_app).config,
        model_spec=model_spec,
        version_users=version_users,
        record_approval=partial(record_approval, app=the_app),
    )


def notifications():
    """The notices a paused promotion sends its approvers (``services.promotion_notices``): e-mail when
    ``RELEASEGATE_SMTP_HOST`` is set (addresses: ``emails`` of the governed approvers config), a chat
    message when ``RELEASEGATE_NOTIFY_WEBHOOK_URL`` is; None when neither is."""
    from releasegate.adapters.notifiers import SmtpNotifier, WebhookNotifier
    from releasegate.promotion_ports import Notifications, Notifier
    from releasegate.services.approvers import governed_config
    from releasegate.services.notification_log import LoggedNotifications

    a = app()
    s = a.settings
    notifiers: list[Notifier] = []
    if s.smtp_host:
        notifiers.append(
            SmtpNotifier(
                s.smtp_host,
                s.smtp_port,
                s.smtp_sender,
                lambda: governed_config("notifications", a).emails,
                tls=s.smtp_tls,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            )
        )
    if s.notify_webhook_url is not None:
        notifiers.append(WebhookNotifier(s.notify_webhook_url.get_secret_value()))
    if not notifiers:
        return None
    return Notifications(tuple(notifiers), LoggedNotifications(a.log), s.console_url)


def _registry():
    from releasegate.adapters import mlflow_registry  # imported lazily: MLflow is slow

    return mlflow_registry


def app() -> App:
    """This process's application object, built anew from the environment at each call (cheap: the log's
    and the store's engines are cached per URL), so a changed ``RELEASEGATE_HOME`` is never served stale."""
    return App(settings=settings(), clock=_ClockProxy(), registry_factory=_registry)


def ports():
    """The real adapters behind the ports of ``releasegate.ports``."""
    return app().ports


def halt_ports(the_app: App | None = None, schedules=None):
    """The halt switch's ports (``services.halt.HaltPorts``): the sealed log, the governed approvers
    config, the model manifest, the champion the log approved (``services.alias_guard``) and the models'
    schedules in Prefect (``adapters.prefect_halt``; ``schedules`` replaces them, e.g. in a unit test)."""
    from releasegate.adapters.config import model_spec
    from releasegate.services.alias_guard import approved_champion
    from releasegate.services.approvers import governed_config
    from releasegate.services.halt import HaltPorts

    a = the_app or app()
    if schedules is None:
        from releasegate.adapters.prefect_halt import PrefectSchedules

        schedules = PrefectSchedules()
    return HaltPorts(
        log=a.log,
        clock=a.clock,
        config=lambda: governed_config("halt", a),
        known_model=lambda model: model_spec(model) is not None,
        champion=lambda model: approved_champion(model, a.ports),
        schedules=schedules,
    )

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
from releasegate.ports import ModelRegistry
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

    the_app = app()
    directory = GovernedDirectory(the_app)
    ports = ConsolePorts(
        desk=approval_desk(the_app, directory.config),
        directory=directory,
        journal=DecisionJournal(the_app.log),
        clock=_ClockProxy(),
    )
    settings = ConsoleSettings(
        rp_id=urlsplit(origin).hostname or "localhost",
        origin=origin.rstrip("/"),
        secret_key=os.environ.get("RELEASEGATE_CONSOLE_SECRET", ""),
        oidc=oidc if (oidc := ConsoleOidcSettings()).enabled else None,
    )
    return create_app(ports, settings)


def approval_desk(the_app: App, config=None):
    """The approvals desk (``services.approval_desk``) over Prefect's paused runs, the decision log, the
    governed approvers config (``config``: how to read it; the console's directory by default), the
    models manifest and MLflow."""
    from releasegate.adapters.config import model_spec
    from releasegate.adapters.prefect_manual import awaiting_among, awaiting_approval, resume_paused
    from releasegate.services.approval_desk import GovernedDirectory, PrefectApprovalDesk
    from releasegate.services.promotion import record_approval

    def version_users(model: str, version: str) -> list[str]:
        return the_app.registry.version_users(the_app.registry.model_name("staging", model), version)

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


def _registry(s: Settings) -> ModelRegistry:
    """The ``MlflowRegistry`` of ``s``'s MLflow URIs (one per store and process)."""
    from releasegate.adapters import mlflow_registry  # imported lazily: MLflow is slow

    return mlflow_registry.for_settings(s)


def app() -> App:
    """This process's application object, built anew from the environment at each call (cheap: the log's
    and the store's engines are cached per URL), so a changed ``RELEASEGATE_HOME`` is never served stale."""
    return App(settings=settings(), clock=_ClockProxy(), registry_factory=_registry)


def ports():
    """The real adapters behind the ports of ``releasegate.ports``."""
    return app().ports

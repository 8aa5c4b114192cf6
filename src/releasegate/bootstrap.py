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
        models=model_pages(the_app, directory.config),
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


def model_pages(the_app: App, config=None):
    """The console's model pages (``services.model_pages``) over the decision log, the model manifest
    (the Prefect block when ``PREFECT_API_URL`` is set, else the file), the governed approvers config,
    the registry's champion alias (one call a model page) and the evidence pack's sources.

    Halted or not: the halt switch's state in the log (``services.halt.why_halted``)."""
    from releasegate.services.approval_desk import GovernedDirectory
    from releasegate.services.evidence_html import render
    from releasegate.services.halt import why_halted
    from releasegate.services.model_pages import ModelPages

    def champion_now(model: str) -> str | None:
        registry = the_app.registry
        return registry.alias_version(registry.model_name("prod", model), registry.CHAMPION)

    return ModelPages(
        the_app.log,
        specs=lambda: _manifest().models,
        config=config or GovernedDirectory(the_app).config,
        clock=the_app.clock,
        halted=why_halted(the_app.log, the_app.clock),
        champion_now=champion_now,
        evidence_sources=partial(evidence_sources, the_app),
        render=render,
    )


def _manifest():
    """The model manifest as the flows read it (the block, with a Prefect API), else the file."""
    import os

    from releasegate.adapters.config import load

    return load("models", use_block=bool(os.environ.get("PREFECT_API_URL")))


def evidence_sources(the_app: App):
    """What an evidence pack is assembled from (``services.evidence_pack.EvidenceSources``)."""
    from releasegate.services.evidence_pack import EvidenceSources

    s = the_app.settings
    return EvidenceSources(
        log=the_app.log,
        signing_key=s.signing_key(),
        checkpoint_dir=s.resolved_checkpoint_dir,
        clock=the_app.clock,
        inventory=partial(evidence_inventory, the_app),
        version_tags=partial(version_tags, the_app),
    )


def evidence_inventory(the_app: App, model: str) -> dict:
    """The model's inventory record in an evidence pack: the manifest's entry, the governed owners, the
    registry's champion."""
    import os

    from releasegate.adapters.config import load, model_spec
    from releasegate.errors import ConfigError
    from releasegate.policy.approvers import ApproverConfig
    from releasegate.services.approvers import history
    from releasegate.services.handshakes import owners_of

    if os.environ.get("PREFECT_API_URL"):  # the manifest block, as the flows read it
        spec = model_spec(model)
    else:  # no Prefect server to ask: the manifest file (never an ephemeral server of its own)
        try:
            spec = load("models", use_block=False).get(model)
        except ConfigError:
            spec = None
    steps = history(the_app, "evidence")
    registry = the_app.registry
    prod = registry.model_name("prod", model)
    inventory = {
        "model": model,
        "in_manifest": spec is not None,
        "owners": owners_of(model, spec, steps[-1].config if steps else ApproverConfig()),
        "risk_tier": spec.risk_tier.value if spec else "standard",
        "criticality": spec.criticality.value if spec else "standard",
        "primary_kpi": spec.primary_kpi.model_dump(mode="json") if spec else None,
        "registry": {"staging": registry.model_name("staging", model), "prod": prod},
    }
    try:
        inventory["champion_now"] = registry.alias_version(prod, registry.CHAMPION)
    except Exception as exc:  # the registry is not reachable: the pack says so instead of failing
        inventory["champion_now"] = f"unknown ({exc.__class__.__name__})"
    return inventory


def version_tags(the_app: App, name: str, version: str) -> dict[str, str]:
    """The registry's tags of a version; a version the registry no longer holds (or a registry that does
    not answer) is said in the pack instead of failing it: the decision log is the evidence."""
    try:
        return the_app.registry.version_tags(name, version)
    except Exception as exc:
        return {"unavailable": f"{exc.__class__.__name__}: {str(exc)[:200]}"}


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

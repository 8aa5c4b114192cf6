"""The registry watcher: the webhook's stand-in where there is no MLflow server (embedded SQLite).

Each poll reads every ``<env>.<model>`` registered model, sends one ``registry.model_version.created@v1``
per version above the stored cursor and one ``registry.staging_version.validated@v1`` when the
``staging`` alias of a ``staging.<model>`` moved, then advances the cursor. The idempotency keys are the
webhook's (from model and version), so a version seen by both paths, or re-sent after a crash between
sending and advancing the cursor, starts one run.
"""

from __future__ import annotations

from releasegate.adapters.mlflow_registry import for_settings
from releasegate.app import App
from releasegate.policy.webhooks import split_name
from releasegate.services.alias_guard import GuardResult
from releasegate.services.intake import IntakeResult
from releasegate.store.scheduling_store import RegistryEventStore


def watch_once(app: App) -> list[IntakeResult]:
    from releasegate.adapters.prefect_runs import send_event

    store = RegistryEventStore(app.settings.resolved_database_url)
    registry = for_settings(app.settings)
    c = registry.client
    now = app.clock.now()
    results: list[IntakeResult] = []
    for rm in list(registry.registered_models()):  # read whole first: pages are offsets
        parts = split_name(rm.name, app.settings.environments)
        if parts is None:
            continue
        env, model = parts
        last, alias_seen = store.cursor(rm.name)
        versions = sorted(int(v.version) for v in c.search_model_versions(f"name='{rm.name}'"))
        for v in (v for v in versions if v > last):
            results.append(
                send_event(
                    app,
                    {
                        "event_id": f"registry-watcher:{rm.name}:{v}",
                        "event_type": "registry.model_version.created@v1",
                        "occurred_at": now.isoformat(),
                        "producer": "registry-watcher",
                        "idempotency_key": f"model-version:{rm.name}:{v}",
                        "payload": {"model_name": model, "version": str(v), "source_environment": env},
                    },
                )
            )
        alias = str(rm.aliases["staging"]) if env == "staging" and "staging" in (rm.aliases or {}) else None
        if alias and alias != alias_seen:
            results.append(
                send_event(
                    app,
                    {
                        "event_id": f"registry-watcher:{rm.name}@staging:{alias}",
                        "event_type": "registry.staging_version.validated@v1",
                        "occurred_at": now.isoformat(),
                        "producer": "registry-watcher",
                        "idempotency_key": f"staging-validated:{model}:{alias}",
                        "payload": {"model_name": model, "version": alias},
                    },
                )
            )
        store.advance(rm.name, max(versions, default=last), alias or alias_seen, now)
    return results


def guard_prod_aliases(app: App, mode: str | None = None) -> list[GuardResult]:
    """The protected champion (``services.alias_guard``) for every model in the prod registry namespace,
    each under its alias lock; incidents go out as Prefect events. ``mode`` (restore | report | off)
    defaults to RELEASEGATE_ALIAS_GUARD."""
    from prefect.concurrency.sync import concurrency

    from releasegate.adapters import prefect_events
    from releasegate.adapters.prefect_locks import ensure_alias_lock
    from releasegate.services.alias_guard import guard_model

    s = app.settings
    mode = mode or s.alias_guard
    if mode == "off":
        return []
    ports = app.ports
    registry = for_settings(s)
    out = []
    for rm in list(registry.registered_models()):  # read whole first: pages are offsets
        parts = split_name(rm.name, s.environments)
        if parts is None or parts[0] != s.prod_environment:
            continue
        try:
            out.append(
                guard_model(
                    parts[1],
                    ports,
                    restore=mode == "restore",
                    emit_event=prefect_events.emit_event,
                    lock=lambda m: concurrency(ensure_alias_lock(m), occupy=1, strict=True, timeout_seconds=60),
                )
            )
        except Exception as exc:  # e.g. the alias lock held by a long promotion: the other models still count
            out.append(GuardResult(parts[1], f"not checked: {exc.__class__.__name__}: {exc}"[:300]))
    return out

"""``registry-watcher``: every minute, turn new registry versions and staging-alias moves into events
(for an embedded SQLite registry, where no MLflow server sends webhooks), and guard the prod aliases:
a ``champion`` or ``archive`` moved outside releasegate is an incident, moved back per policy
(``services.alias_guard``; RELEASEGATE_ALIAS_GUARD)."""

from prefect import get_run_logger

from releasegate import bootstrap
from releasegate.adapters.registry_watch import guard_prod_aliases, watch_once
from releasegate.jobs import governed


@governed("registry-watcher")
def registry_watcher() -> dict:
    app = bootstrap.app()
    results = watch_once(app)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    logger = get_run_logger()
    logger.info("registry watcher: %s", counts or "nothing new")
    guarded = guard_prod_aliases(app)
    for g in guarded:
        for f in g.findings:
            logger.error("P1 incident %s (%s): %s", g.incident_decision, g.status, f)
    aliases = {g.model: g.status for g in guarded}
    logger.info("alias guard: %s", aliases or "no prod models")
    return counts | {"alias_guard": aliases}

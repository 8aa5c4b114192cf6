"""``registry-watcher``: every minute, turn new registry versions and staging-alias moves into events
(for an embedded SQLite registry, where no MLflow server sends webhooks)."""

from prefect import get_run_logger

from releasegate.adapters.prefect_flows import governed_flow
from releasegate.adapters.registry_watch import watch_once


@governed_flow("registry-watcher")
def registry_watcher() -> dict:
    results = watch_once()
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    get_run_logger().info("registry watcher: %s", counts or "nothing new")
    return counts

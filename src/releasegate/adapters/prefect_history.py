"""The governed deployments' run history, read from the Prefect API, for the capacity plan."""

from __future__ import annotations

from datetime import datetime

from prefect import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterStartTime,
)

from releasegate.adapters.prefect_gate import governing_name
from releasegate.adapters.prefect_query import read_all_flow_runs

__all__ = ["read_run_history"]


def read_run_history(deployments: set[str], since: datetime, until: datetime) -> list[tuple[str, str, datetime, float]]:
    """Every run of the named deployments expected to start in [since, until) that did start: its
    deployment, work queue, expected start and the seconds it ran (Prefect's ``total_run_time``, the
    time spent Running; for a run still running, until ``until``). A deployment made from a governed
    one (``eod-scoring/<model>``) is named as the policy names it (``eod-scoring``)."""
    with get_client(sync_client=True) as client:
        runs = read_all_flow_runs(
            client,
            flow_run_filter=FlowRunFilter(
                expected_start_time=FlowRunFilterExpectedStartTime(after_=since, before_=until),
                start_time=FlowRunFilterStartTime(is_null_=False),
            ),
        )
        ids = list({r.deployment_id for r in runs if r.deployment_id})
        names = (
            {
                str(d.id): governing_name(d)
                for d in client.read_deployments(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=ids)))
            }
            if ids
            else {}
        )
    out: list[tuple[str, str, datetime, float]] = []
    for r in runs:
        name = names.get(str(r.deployment_id)) if r.deployment_id else None
        if name not in deployments or r.expected_start_time is None:
            continue
        secs = r.total_run_time.total_seconds() if r.total_run_time else 0.0
        if not secs and r.start_time is not None:
            secs = float((r.end_time or until).timestamp() - r.start_time.timestamp())
        out.append((name, r.work_queue_name or "", r.expected_start_time, max(1.0, secs)))
    return out

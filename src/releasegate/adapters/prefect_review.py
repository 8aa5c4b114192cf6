"""What the weekly operational-risk review reads from Prefect: every deployment run of the work pool whose
expected start fell in the week, and whether a worker started it (``policy.operational_review``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime
from typing import Any

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import StateType

from releasegate.adapters.prefect_gate import deployment_names
from releasegate.adapters.prefect_query import read_all_flow_runs
from releasegate.policy.operational_review import DeferralFact, RunFact

STARTED = (StateType.RUNNING, StateType.COMPLETED)


def week_runs(pool_name: str, start: datetime, end: datetime) -> list[RunFact]:
    """The pool's deployment runs due in ``[start, end)``, by the capacity policy's deployment names."""
    with get_client(sync_client=True) as client:
        runs = read_all_flow_runs(
            client,
            flow_run_filter=FlowRunFilter(
                expected_start_time=FlowRunFilterExpectedStartTime(after_=start, before_=end)
            ),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool_name])),
        )
        runs = [r for r in runs if r.deployment_id is not None and r.expected_start_time is not None]
        names = deployment_names(client, runs)
    return [
        RunFact(
            flow_run_id=str(r.id),
            deployment=names.get(str(r.deployment_id), str(r.deployment_id)),
            due=r.expected_start_time,
            started=r.start_time is not None or r.state_type in STARTED,
        )
        for r in runs
        if start <= r.expected_start_time < end  # the filter's bounds are inclusive
    ]


def as_deferral_facts(deferrals: list, start: datetime, end: datetime) -> list[DeferralFact]:
    """The scheduling store's deferrals opened in ``[start, end)`` as the review's facts."""
    return [
        DeferralFact(
            flow_run_id=d.flow_run_id,
            deployment=d.deployment,
            reason_code=d.reason_code,
            first_deferred_at=d.first_deferred_at,
            closed_at=d.closed_at,
        )
        for d in deferrals
        if start <= d.first_deferred_at < end
    ]


def week_facts_reader(pool_name: str, store: Any) -> Callable[[datetime, datetime], tuple[list, list]]:
    """The review's fact reader over this pool's Prefect runs and ``store``'s deferrals."""

    def read(start: datetime, end: datetime) -> tuple[list[RunFact], list[DeferralFact]]:
        deferrals = as_deferral_facts(store.deferrals(status=None, since=start), start, end)
        return week_runs(pool_name, start, end), deferrals

    return read


def publish_markdown(markdown: str, key: str, description: str) -> None:
    """A markdown artifact under ``key`` (the Artifacts page of Prefect's UI lists its versions)."""
    from prefect.artifacts import create_markdown_artifact

    # Outside a flow run Prefect warns that such artifacts are deprecated; they are still where its UI shows them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        create_markdown_artifact(markdown=markdown, key=key, description=description)

"""A worker inside this process: for ``make demo``, the benches and tests, not for production.

It picks the scheduled runs of the given deployments through the Prefect API and runs them with
Prefect's engine (``run_flow``, what a worker's subprocess runs), one at a time, in a thread. A real
worker (``prefect worker start --pool releasegate``) starts a process per run, which costs seconds of
``import prefect`` on these machines; the demo must finish in under three minutes, so it runs flows
in-process instead. Runs the capacity gateway deferred (state ``Deferred``) are taken again when due.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID


def _full_name(name: str) -> str:
    """``flow/deployment``; a bare name is a deployment named like its flow (``rollback/rollback``)."""
    return name if "/" in name else f"{name}/{name}"


class InProcessWorker:
    """``flows`` maps a deployment (``rollback``, or ``flow/deployment`` such as ``eod-scoring/credit``)
    to the flow object its runs execute."""

    def __init__(self, flows: dict[str, Any], poll_seconds: float = 0.3):
        from releasegate import bootstrap

        self.flows, self.poll = flows, poll_seconds
        self.stop = threading.Event()
        self.ran: list[UUID] = []  # flow run ids taken, in order
        self.errors: list[str] = []
        self._clock = bootstrap.clock()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="inprocess-worker")

    def _loop(self) -> None:
        from prefect import get_client

        from releasegate.bootstrap import use_clock

        with get_client(sync_client=True) as c:
            by_id = {c.read_deployment_by_name(_full_name(n)).id: f for n, f in self.flows.items()}
        with use_clock(self._clock):
            while not self.stop.is_set():
                try:
                    self._poll_once(by_id)
                except Exception as exc:  # an API hiccup must not kill the worker thread
                    self.errors.append(f"poll: {type(exc).__name__}: {exc}")
                time.sleep(self.poll)

    def _poll_once(self, by_id: dict[Any, Any]) -> None:
        from prefect import get_client
        from prefect.client.schemas.filters import (
            DeploymentFilter,
            DeploymentFilterName,
            FlowRunFilter,
            FlowRunFilterState,
        )
        from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypeFilter
        from prefect.client.schemas.objects import StateType
        from prefect.exceptions import Pause
        from prefect.flow_engine import run_flow

        with get_client(sync_client=True) as c:
            runs = c.read_flow_runs(
                deployment_filter=DeploymentFilter(
                    name=DeploymentFilterName(any_=[_full_name(n).split("/", 1)[1] for n in self.flows])
                ),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=StateTypeFilter(any_=[StateType.SCHEDULED]))
                ),
                limit=10,
            )
            for r in runs:
                if r.id in self.ran or r.deployment_id not in by_id:  # another flow's deployment of that name
                    continue
                if r.next_scheduled_start_time and r.next_scheduled_start_time.timestamp() > time.time():
                    continue  # not due yet (a run deferred by the capacity gateway waits here)
                self.ran.append(r.id)
                try:
                    run_flow(by_id[r.deployment_id], flow_run=c.read_flow_run(r.id), return_type="state")
                except Pause:  # deferred by the capacity gateway: picked up again when due
                    self.ran.remove(r.id)
                except Exception as exc:  # the run's state says what failed; keep serving
                    self.errors.append(f"{r.id}: {type(exc).__name__}: {exc}")

    def __enter__(self) -> InProcessWorker:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)

"""When a run the capacity gateway defers is predicted to start (``policy.start_prediction``).

The gateway's ``next_evaluation_at`` says when it asks again; a capacity deferral (a code in
``policy.deferrals.WAKEABLE``) also carries ``predicted_start_at``: the list schedule over the snapshot
the gateway decided on, as the simulator builds it (``tools.simulate``):

* waiting: this run (in line since its open deferral's first deferral, else now) and the other open
  wakeable deferrals of a queue of the same or a higher priority (their queue: ``run_queue``), each
  in line since its first deferral; a deferral whose Prefect run is gone or finished is left out;
* active: the snapshot's active runs, each ending its median duration after it started (a pending run:
  after now), the typical duration, not the conservative one the gateway reserves with;
* reservations: the snapshot's upcoming runs, each for its median duration.

An estimate beside the decision: it never changes ``next_evaluation_at`` or the decision, and the
caller records the deferral without it when it cannot be computed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from releasegate.adapters.prefect_gate import deployment_names, expected_durations, run_queue
from releasegate.adapters.prefect_query import read_all_flow_runs
from releasegate.app import App
from releasegate.policy.capacity import CapacitySnapshot, GatewayConfig, RunRequest
from releasegate.policy.deferrals import WAKEABLE
from releasegate.policy.start_prediction import QueuedRun, predict_starts

__all__ = ["predict_gate_start"]


def predict_gate_start(
    app: App,
    client,
    config: GatewayConfig,
    request: RunRequest,
    snapshot: CapacitySnapshot,
    since: datetime,
    now: datetime,
) -> datetime | None:
    """``request``'s predicted start (never before ``now``), deferred from ``since`` (its first deferral);
    None when the pool has no slots to predict with."""
    run_id = request.flow_run_id
    deferred = [d for d in app.store.deferrals("open") if d.reason_code in WAKEABLE and d.flow_run_id != run_id]
    ids = {run_id, *(a.flow_run_id for a in snapshot.active + snapshot.upcoming), *(d.flow_run_id for d in deferred)}
    runs = {
        str(r.id): r
        for r in read_all_flow_runs(
            client, flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(i) for i in ids]))
        )
    }
    names = deployment_names(client, list(runs.values()))
    typical = expected_durations(app, client, names, percentile=50.0, min_samples=1)

    def seconds(flow_run_id: str) -> float | None:
        r = runs.get(flow_run_id)
        return typical.get(str(r.deployment_id)) if r is not None and r.deployment_id else None

    prio = {q.name: q.priority for q in config.queues}
    mine = prio[request.queue]
    waiting = [QueuedRun(flow_run_id=run_id, queue=request.queue, since=since, expected_seconds=seconds(run_id))]
    for d in deferred:
        r = runs.get(d.flow_run_id)
        if r is None or r.state is None or r.state.is_final():
            continue  # stale: Prefect no longer has it waiting
        queue = run_queue(config, d.deployment, r.work_queue_name)
        if prio[queue] <= mine:
            waiting.append(
                QueuedRun(
                    flow_run_id=d.flow_run_id,
                    queue=queue,
                    since=d.first_deferred_at,
                    expected_seconds=seconds(d.flow_run_id),
                )
            )
    active = []
    for a in snapshot.active:
        r, secs = runs.get(a.flow_run_id), seconds(a.flow_run_id)
        if r is not None and secs is not None:
            started = r.start_time if a.state == "running" and r.start_time else now
            a = a.model_copy(update={"expected_end": started + timedelta(seconds=secs)})
        active.append(a)
    reservations = [
        u if seconds(u.flow_run_id) is None else u.model_copy(update={"expected_seconds": seconds(u.flow_run_id)})
        for u in snapshot.upcoming
    ]
    return predict_starts(waiting, active, reservations, config, now, until=run_id).get(run_id)

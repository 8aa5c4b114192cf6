"""Deferral SLA: how long a run has waited since its *first* deferral, and what that escalates to.

Prefect never marks a run Late while it sits in a ``Scheduled`` state named ``Deferred``, and every
re-deferral restarts Prefect's own timers, so releasegate keeps the first deferral time itself
(``deferrals`` table) and the sweeper escalates from it:

* waited ≥ ``sla_alert_minutes`` (30): ``alert`` → Prefect event ``releasegate.deferral.sla-breached``
* waited ≥ ``sla_incident_minutes`` (60): ``incident`` → Prefect event ``releasegate.incident.opened``

Each escalation is emitted once per deferral.

The sweeper also wakes deferred runs early (``runs_to_wake``): a run deferred for capacity
(PRIORITY_CONFLICT, CAPACITY_LIMIT, QUEUE_LIMIT) waits until ``next_evaluation_at``, which the reservation
rule sets from *conservative* duration estimates (a high percentile of each deployment's runs). When the
blocking run ends sooner, the sweeper asks the same gateway rule again, in queue priority order and
oldest deferral first within a queue, and wakes the runs it would admit now, each counted as holding a
slot for the next; a woken run goes back to Prefect's queue at its first deferral time, so it keeps its
place ahead of younger runs. Prefect has no
such thing: a Scheduled run waits for its scheduled time. Pure module.
"""

from __future__ import annotations

import heapq
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from releasegate.policy.capacity import ActiveRun, Admitted, CapacitySnapshot, GatewayConfig, RunRequest, decider

SLA_EVENTS = {
    "alert": "releasegate.deferral.sla-breached",
    "incident": "releasegate.incident.opened",
}


class SlaState(StrEnum):
    ok = "ok"
    alert = "alert"
    incident = "incident"


_ORDER = [SlaState.ok, SlaState.alert, SlaState.incident]


def sla_state(
    first_deferred_at: datetime, now: datetime, alert_minutes: int = 30, incident_minutes: int = 60
) -> SlaState:
    waited = now - first_deferred_at
    if waited >= timedelta(minutes=incident_minutes):
        return SlaState.incident
    if waited >= timedelta(minutes=alert_minutes):
        return SlaState.alert
    return SlaState.ok


def escalations_due(current: SlaState, already: SlaState) -> list[SlaState]:
    """The escalations to emit now: every level above ``already`` up to ``current``."""
    return [s for s in _ORDER if _ORDER.index(already) < _ORDER.index(s) <= _ORDER.index(current)]


GATE_FAILURE_ACK_MINUTES = 30


def gate_failures_to_escalate(
    failures: list[dict[str, Any]],
    acknowledged: AbstractSet[str | None],
    escalated: AbstractSet[str | None],
    now: datetime,
    ack_minutes: int = GATE_FAILURE_ACK_MINUTES,
) -> list[dict[str, Any]]:
    """Gate failures (``{"decision_id", "at", …}``) older than ``ack_minutes`` with neither an
    acknowledgement nor an incident yet: each becomes one ``releasegate.incident.opened`` (P1)."""
    limit = timedelta(minutes=ack_minutes)
    return [
        f
        for f in failures
        if f["decision_id"] not in acknowledged and f["decision_id"] not in escalated and now - f["at"] >= limit
    ]


# deferrals a freed slot can end early; windows and upstreams have their own end times
WAKEABLE = frozenset({"PRIORITY_CONFLICT", "CAPACITY_LIMIT", "QUEUE_LIMIT"})


def runs_to_wake(
    deferred: list[RunRequest], snapshot: CapacitySnapshot, config: GatewayConfig, now: datetime
) -> list[RunRequest]:
    """The deferred runs (``deferred``: oldest deferral first) the gateway would admit now, asked in queue
    priority order (EOD before backfills), oldest deferral first within a queue. Each run woken counts as
    holding a slot (until its expected end) when the next one is asked, and no longer as a reservation
    (a deferred higher-priority run in ``snapshot.upcoming``), so no more are woken than the pool and
    queues hold; the gateway still decides when each run starts."""
    woken: list[RunRequest] = []
    active = list(snapshot.active)
    upcoming = list(snapshot.upcoming)
    decide = decider(snapshot, config, now)
    # Whether the gateway admits a run depends on its deployment, queue, expected duration and business
    # dates, never on its id or deferral count (those only set the next evaluation time): a refusal holds
    # for every run alike until the next wake changes the pool.
    refused: set[tuple[Any, ...]] = set()
    priority = {q.name: q.priority for q in config.queues}
    order = sorted(deferred, key=lambda r: priority[r.queue] if r.queue in priority else config.queue(r.queue).priority)
    for request in order:  # stable: oldest first within a queue
        if len(active) >= config.pool_concurrency_limit:
            break  # the pool is full: the gateway defers every run (CAPACITY_LIMIT), no need to ask
        alike = (request.deployment, request.queue, request.expected_seconds, tuple(request.business_dates))
        if alike in refused:
            continue
        if not isinstance(decide(request), Admitted):
            refused.add(alike)
        else:
            refused.clear()
            woken.append(request)
            seconds = request.expected_seconds
            active.append(
                ActiveRun(
                    flow_run_id=request.flow_run_id,
                    deployment=request.deployment,
                    queue=request.queue,
                    state="pending",
                    expected_end=now + timedelta(seconds=seconds) if seconds is not None else None,
                )
            )
            upcoming = [u for u in upcoming if u.flow_run_id != request.flow_run_id]
            decide = decider(snapshot.model_copy(update={"active": active, "upcoming": upcoming}), config, now)
    return woken


# ------------------------------------------------------------------------ runs waiting behind a cap
class WaitingRun(BaseModel):
    """A run of a gated deployment that is due but not started: Prefect holds it back (a pool or queue
    cap is full), so no worker has taken it and the gateway has not seen it."""

    model_config = ConfigDict(frozen=True)
    flow_run_id: str
    deployment: str
    queue: str
    due: datetime
    expected_seconds: float | None = None


class CapWait(BaseModel):
    """A waiting run's deferral: the cap that holds it (``CAPACITY_LIMIT`` pool-wide, ``QUEUE_LIMIT`` its
    queue's) and when it is predicted to start."""

    model_config = ConfigDict(frozen=True)
    flow_run_id: str
    deployment: str
    queue: str
    reason_code: str
    due: datetime
    predicted_start_at: datetime


def cap_waits(
    waiting: list[WaitingRun], active: list[ActiveRun], config: GatewayConfig, now: datetime
) -> list[CapWait]:
    """The waiting runs a cap holds back now, each with its predicted start: list scheduling in Prefect's
    own order (queue priority, then the earliest due) over the running runs' expected ends, within the
    pool's and each queue's cap. An unknown end (a run without history) counts as freeing its slot now:
    the prediction is then early, never late by that run. A run predicted to start now is not waiting for
    a cap (its worker has not polled yet), so it is not deferred."""
    pool_free = sorted(max(a.expected_end or now, now) for a in active)
    pool_slots = _slots(pool_free, config.pool_concurrency_limit, now)
    queue_slots: dict[str, list[datetime]] = {}
    for q in config.queues:
        ends = sorted(max(a.expected_end or now, now) for a in active if a.queue == q.name)
        queue_slots[q.name] = _slots(ends, q.concurrency_limit, now)
    out: list[CapWait] = []
    prio = {q.name: q.priority for q in config.queues}
    for w in sorted(waiting, key=lambda r: (prio.get(r.queue, 10**6), r.due, r.flow_run_id)):
        pool_at = heapq.heappop(pool_slots)
        q_heap = queue_slots.get(w.queue)
        queue_at = heapq.heappop(q_heap) if q_heap else now
        start = max(now, w.due, pool_at, queue_at)
        end = start + timedelta(seconds=w.expected_seconds or 0)
        heapq.heappush(pool_slots, end)
        if q_heap is not None:
            heapq.heappush(q_heap, end)
        if start <= now:
            continue
        code = "CAPACITY_LIMIT" if pool_at >= queue_at else "QUEUE_LIMIT"
        out.append(CapWait(**w.model_dump(exclude={"expected_seconds"}), reason_code=code, predicted_start_at=start))
    return out


def _slots(ends: list[datetime], cap: int, now: datetime) -> list[datetime]:
    """A heap of when each of ``cap`` slots is free: the latest ``cap`` running ends, the rest now."""
    slots = ends[len(ends) - cap :] if len(ends) > cap else [now] * (cap - len(ends)) + ends
    heapq.heapify(slots)
    return slots


# ------------------------------------------------------------------------------- storms, per queue
STORM_EVENTS = {
    "alert": "releasegate.deferral.sla-breached",
    "incident": "releasegate.incident.opened",
    "closed": "releasegate.incident.closed",
}


class StormChange(BaseModel):
    """One change of a queue's storm incident: opened (at ``alert`` or straight at ``incident``),
    escalated to ``incident``, or ``closed`` when the queue has no open deferral left."""

    model_config = ConfigDict(frozen=True)
    queue: str
    state: str  # alert | incident | closed
    count: int
    oldest: datetime | None
    waited_minutes: int
    drain_at: datetime | None  # when the last of its deferred runs is predicted to start

    def explanation(self, recommended_pool: int | None, pool: int) -> str:
        if self.state == "closed":
            return f"deferral storm in queue {self.queue!r} closed: no deferred run left"
        plan = (
            f"; the last capacity plan recommends a pool of {recommended_pool} (configured {pool})"
            if recommended_pool is not None
            else "; no capacity plan yet (`releasegate capacity plan`)"
        )
        drain = f", predicted to drain by {self.drain_at.isoformat()}" if self.drain_at else ""
        return (
            f"deferral storm in queue {self.queue!r} ({self.state}): {self.count} deferred run(s), the oldest "
            f"deferred {self.waited_minutes} min ago{drain}{plan}"
        )


def storm_change(
    queue: str,
    first_deferred: list[datetime],
    next_evaluations: list[datetime],
    current: SlaState | None,
    now: datetime,
    alert_minutes: int = 30,
    incident_minutes: int = 60,
) -> StormChange | None:
    """What a queue's storm incident does now, from its open deferrals (their first deferral and next
    evaluation times) and its current level (None: no storm open): one incident per queue while any
    deferral is past ``alert_minutes``, escalated once past ``incident_minutes``, closed when none is
    open. Levels never go down while the storm is open: it is one incident until the queue drains."""
    if not first_deferred:
        if current is None:
            return None
        return StormChange(queue=queue, state="closed", count=0, oldest=None, waited_minutes=0, drain_at=None)
    oldest = min(first_deferred)
    level = sla_state(oldest, now, alert_minutes, incident_minutes)
    if level is SlaState.ok or (current is not None and _ORDER.index(level) <= _ORDER.index(current)):
        return None
    return StormChange(
        queue=queue,
        state=level.value,
        count=len(first_deferred),
        oldest=oldest,
        waited_minutes=int((now - oldest) / timedelta(minutes=1)),
        drain_at=max(next_evaluations) if next_evaluations else None,
    )

"""When a run deferred for capacity is expected to start: a small forward list schedule.

A capacity deferral's ``next_evaluation_at`` says when the gateway asks again (under the reservation
rule: when the run first fits the reservation plan). It does not count the other deferred runs queued
before it, which take the slots it would fit in first. ``predict_starts`` is the separate estimate
carried beside it (``predicted_start_at``); it never changes a decision.

The schedule, over one snapshot, on a grid of one minute (conservative backfilling):

* the pool's slots (and each capped queue's) are held by the running runs until their expected ends (an
  unknown end counts as free now: the estimate is then early, never late by that run);
* the higher-priority scheduled runs (the reservations) and the waiting runs are placed in the order
  the pool admits them: queue priority first (the lower number), then a reservation by its expected
  start and a waiting run by when it joined the queue (its first deferral: the sweeper wakes the oldest
  first), then the id;
* each starts at the first step, not before it may, from which the pool and its queue have a free slot
  for its whole expected duration (unknown: one step) beside everything placed before it; so a short run
  fits in the gap before a reservation, a long one waits until after it, as the reservation rule admits.

The durations are the caller's: a prediction wants typical ones (the median of the deployment's history),
not the conservative percentile the gateway reserves with, which would make every prediction late.

Pure: the snapshot's runs and ``now`` are passed in, no I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from pydantic import BaseModel, ConfigDict

from releasegate.policy.active_runs import ActiveRun
from releasegate.policy.gateway_config import GatewayConfig

__all__ = ["QueuedRun", "predict_starts"]


class QueuedRun(BaseModel):
    """A run waiting for a slot: deferred for capacity, or due and not started."""

    model_config = ConfigDict(frozen=True)
    flow_run_id: str
    queue: str
    since: datetime  # when it joined the queue (its first deferral, else its due time): the FIFO order
    ready_at: datetime | None = None  # the earliest it may start (None: now)
    expected_seconds: float | None = None


def _ceil(seconds: float, step: int) -> int:
    return max(0, int(-(-seconds // step)))


class _Profile:
    """Slots in use per step of ``step`` seconds from ``now``: the pool's, or one queue's."""

    def __init__(self, cap: int):
        self.cap = cap
        self.use = np.zeros(64, dtype=np.int32)

    def grow(self, size: int) -> None:
        if size > self.use.size:
            self.use = np.concatenate([self.use, np.zeros(max(size, 2 * self.use.size) - self.use.size, np.int32)])

    def add(self, begin: int, end: int) -> None:
        self.grow(end)
        self.use[begin:end] += 1


def _earliest(profiles: list[_Profile], ready: int, steps: int, extent: int) -> int:
    """The first step from ``ready`` at which ``steps`` steps in a row have a free slot in every profile
    (``extent``: no step from there on is in use, so one is found by then)."""
    size = max(ready, extent) + steps + 1
    for p in profiles:
        p.grow(size)
    blocked = np.zeros(size - ready, dtype=bool)
    for p in profiles:
        blocked |= p.use[ready:size] >= p.cap
    if not blocked.any():
        return ready
    count = np.concatenate([[0], np.cumsum(blocked)])
    window = count[steps:] - count[:-steps]
    return ready + int(np.flatnonzero(window == 0)[0])


def predict_starts(
    waiting: list[QueuedRun],
    active: list[ActiveRun],
    reservations: list[ActiveRun],
    config: GatewayConfig,
    now: datetime,
    step_seconds: int = 60,
    until: str | None = None,
) -> dict[str, datetime]:
    """Each waiting run's predicted start (by ``flow_run_id``), never before ``now``: the list schedule
    above over the running runs' expected ends (``active``), the higher-priority scheduled runs
    (``reservations``, each at its ``expected_start`` for its ``expected_seconds``; a run also in
    ``waiting`` is placed once, as waiting) and the waiting runs, within the pool's and each queue's cap,
    on a grid of ``step_seconds`` (a start is rounded up to it). ``until``: stop once that waiting run is
    placed (the runs after it in the order cannot move it)."""
    if config.pool_concurrency_limit <= 0:
        return {}
    step = step_seconds

    def at(t: datetime | None) -> int:
        return _ceil((t - now).total_seconds(), step) if t is not None and t > now else 0

    prio = {q.name: q.priority for q in config.queues}
    lowest = max(prio.values(), default=0) + 1
    pool = _Profile(config.pool_concurrency_limit)
    # a queue capped below the pool (a cap of 0: none)
    queues = {
        q.name: _Profile(q.concurrency_limit)
        for q in config.queues
        if 0 < q.concurrency_limit < config.pool_concurrency_limit
    }
    extent = 0
    for a in active:
        end = at(a.expected_end)  # an unknown end: free now
        extent = max(extent, end)
        pool.add(0, end)
        if a.queue in queues:
            queues[a.queue].add(0, end)
    waiting_ids = {w.flow_run_id for w in waiting}
    # (priority, order time, id, queue, ready, seconds, waiting?)
    items: list[tuple[int, datetime, str, str, datetime, float | None, bool]] = [
        (prio.get(w.queue, lowest), w.since, w.flow_run_id, w.queue, w.ready_at or now, w.expected_seconds, True)
        for w in waiting
    ]
    for r in reservations:
        if r.flow_run_id not in waiting_ids:
            start = max(r.expected_start or now, now)
            q = r.queue or ""
            items.append((prio.get(q, lowest), start, r.flow_run_id, q, start, r.expected_seconds, False))
    items.sort(key=lambda it: it[:3])
    out: dict[str, datetime] = {}
    for _, _, run_id, queue, ready, seconds, is_waiting in items:
        steps = max(1, _ceil(seconds or 0, step))
        profiles = [pool, queues[queue]] if queue in queues else [pool]
        begin = _earliest(profiles, at(ready), steps, extent)
        for p in profiles:
            p.add(begin, begin + steps)
        extent = max(extent, begin + steps)
        if is_waiting:
            out[run_id] = now + timedelta(seconds=begin * step)
            if run_id == until:
                break
    return out

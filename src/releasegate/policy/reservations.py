"""Reservations for the capacity gateway's ``reservation`` rule (EASY backfilling): the higher-priority
runs due within the horizon, each holding one slot from its start (or, when its queue is full then, from
when a slot of its queue frees: ``queue_limited``) for its expected duration, and the
two questions ``policy.capacity`` asks of them: which reservation would a run started at ``t`` take the
slot of, and from when does it fit. Pure: the snapshot's runs and ``now`` are passed in."""

from __future__ import annotations

import heapq
from bisect import bisect_right
from datetime import datetime, timedelta

from releasegate.policy.active_runs import ActiveRun


def span(reserved: ActiveRun, now: datetime) -> tuple[datetime, datetime | None]:
    """A reservation's start (not before ``now``) and expected end (None: unknown duration)."""
    start = max(reserved.expected_start or now, now)
    end = start + timedelta(seconds=reserved.expected_seconds) if reserved.expected_seconds is not None else None
    return start, end


def queue_limited(
    res: list[ActiveRun], active: list[ActiveRun], now: datetime, queue_caps: dict[str, int]
) -> list[tuple[datetime, datetime | None]]:
    """Each reservation's span once its own queue's cap is respected: a higher-priority run cannot start
    while its queue is full, so it holds a pool slot from when a slot of its queue frees (list scheduling
    over the queue's running runs and the reservations before it). Conservative for the reserved runs: an
    unknown end (a running run's or a reservation's) counts as freeing its queue slot at once, so only
    known ends move a reservation later. ``res``: earliest first; the result is in the same order."""
    spans = [span(r, now) for r in res]
    free: dict[str, list[datetime]] = {}
    for q, cap in queue_caps.items():
        ends = sorted(max(a.expected_end or now, now) for a in active if a.queue == q)
        slots = ends[len(ends) - cap :] if len(ends) > cap else [now] * (cap - len(ends)) + ends
        heapq.heapify(slots)
        free[q] = slots
    out: list[tuple[datetime, datetime | None]] = []
    for r, (start, end) in zip(res, spans, strict=True):
        heap = free.get(r.queue or "")
        if not heap:  # a queue without a cap (or a cap of 0): as planned
            out.append((start, end))
            continue
        begin = max(start, heapq.heappop(heap))
        finish = begin + timedelta(seconds=r.expected_seconds) if r.expected_seconds is not None else None
        heapq.heappush(heap, finish or begin)
        out.append((begin, finish))
    return out


class ReservationPlan:
    """The reservations one priority level must respect, precomputed once per snapshot: each
    reservation's span and the pool's load at its start (running runs still expected to run then, plus
    the reservations holding a slot then). ``blocking`` and ``earliest_fit`` answer from these, and
    remember their answers per expected duration: a backlog of runs of one deployment asks the same
    question many times against one snapshot."""

    def __init__(
        self,
        res: list[ActiveRun],
        active: list[ActiveRun],
        now: datetime,
        cap: int,
        queue_caps: dict[str, int] | None = None,
    ):
        self.cap, self.now = cap, now
        spans = queue_limited(res, active, now, queue_caps) if queue_caps else [span(r, now) for r in res]
        order = sorted(range(len(res)), key=lambda i: spans[i][0])  # a queue's cap may move a start later
        self.res = [res[i] for i in order]
        self.spans = [spans[i] for i in order]
        self.unknown_active = sum(1 for a in active if a.expected_end is None)
        self.active_ends = sorted(a.expected_end for a in active if a.expected_end is not None)
        self.load = []
        for i, (start, _) in enumerate(self.spans):
            reserved = sum(1 for _, end in self.spans[: i + 1] if end is None or end > start)
            self.load.append((self.running_at(start), reserved))
        self._blocking: dict[float | None, tuple[ActiveRun, int, int] | None] = {}
        self._fit: dict[float | None, datetime | None] = {}

    def running_at(self, t: datetime) -> int:
        """Running runs still expected to hold their slot at ``t`` (unknown end: they do)."""
        return self.unknown_active + len(self.active_ends) - bisect_right(self.active_ends, t)

    def span_of(self, reserved: ActiveRun) -> tuple[datetime, datetime | None]:
        """A reservation's span in this plan (its queue's cap respected)."""
        return self.spans[self.res.index(reserved)]

    def blocking(self, t: datetime, mine: float | None) -> tuple[ActiveRun, int, int] | None:
        """The first reservation a run started at ``t`` (expected to take ``mine`` seconds) would take the
        slot of, with the slots running and reserved at its start; None when it takes none."""
        if t == self.now and mine in self._blocking:
            return self._blocking[mine]
        my_end = t + timedelta(seconds=mine) if mine is not None else None
        hit = None
        for i, (start, _) in enumerate(self.spans):
            if start < t:
                continue  # begun before t: it holds its slot in the count of every later start
            if my_end is not None and my_end <= start:
                break  # done before this and every later reservation starts
            running_then, reserved_then = self.load[i]
            if running_then + reserved_then + 1 > self.cap:
                hit = (self.res[i], running_then, reserved_then)
                break
        if t == self.now:
            self._blocking[mine] = hit
        return hit

    def earliest_fit(self, mine: float | None) -> datetime | None:
        """The first time a slot frees (a running run's or a reservation's expected end) at which the run
        would fit: a free slot then, and no reservation's slot taken."""
        if mine in self._fit:
            return self._fit[mine]
        ends = {e for e in self.active_ends if e > self.now} | {end for _, end in self.spans if end is not None}
        fit = None
        for t in sorted(ends):
            busy = self.running_at(t)
            busy += sum(1 for start, end in self.spans if start <= t and (end is None or end > t))
            if busy + 1 <= self.cap and self.blocking(t, mine) is None:
                fit = t
                break
        self._fit[mine] = fit
        return fit

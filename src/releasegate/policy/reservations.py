"""Reservations for the capacity gateway's ``reservation`` rule (EASY backfilling): the higher-priority
runs due within the horizon, each holding one slot from its start (or, when its queue is full then, from
when a slot of its queue frees: ``queue_limited``) for its expected duration, and the
two questions ``policy.capacity`` asks of them: which reservation would a run started at ``t`` take the
slot of, and from when does it fit. Pure: the snapshot's runs and ``now`` are passed in."""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
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
    holding: dict[str | None, int] = {}
    for run in (*active, *res):
        holding[run.queue] = holding.get(run.queue, 0) + 1
    if all(holding.get(q, 0) <= cap for q, cap in queue_caps.items() if cap > 0):
        return spans  # every queue has a slot for each of its reservations at once: none starts later
    by_queue: dict[str | None, list[datetime]] = {}
    for a in active:
        by_queue.setdefault(a.queue, []).append(max(a.expected_end or now, now))
    free: dict[str, list[datetime]] = {}
    for q, cap in queue_caps.items():
        ends = sorted(by_queue.get(q, ()))
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
        known = [a.expected_end for a in active if a.expected_end is not None]
        self.unknown_active = len(active) - len(known)
        self.active_ends = sorted(known)
        self.starts = [start for start, _ in self.spans]
        self.load = []
        # the reservations up to and including each one (earliest start first) still holding a slot at
        # its start: an unknown end holds it, a known end does when it is later than the start
        unknown = 0
        ends: list[datetime] = []
        for start, end in self.spans:
            if end is None:
                unknown += 1
            else:
                insort(ends, end)
            reserved = unknown + len(ends) - bisect_right(ends, start)
            self.load.append((self.running_at(start), reserved))
        # the reservations a run holding a slot at their start would take the slot of (the pool is full then)
        self.full = [i for i, (running, reserved) in enumerate(self.load) if running + reserved >= cap]
        self._index = {id(r): i for i, r in enumerate(self.res)}
        self._free_at: list[datetime] | None = None
        # the reservations' known ends, earliest first; when none ends before it starts, those begun by
        # ``t`` and still holding their slot are counted by two bisections
        self.known_ends = ends
        self._ordered = all(end is None or end >= start for start, end in self.spans)
        self._blocking: dict[float | None, tuple[ActiveRun, int, int] | None] = {}
        self._fit: dict[float | None, datetime | None] = {}

    def running_at(self, t: datetime) -> int:
        """Running runs still expected to hold their slot at ``t`` (unknown end: they do)."""
        return self.unknown_active + len(self.active_ends) - bisect_right(self.active_ends, t)

    def span_of(self, reserved: ActiveRun) -> tuple[datetime, datetime | None]:
        """A reservation's span in this plan (its queue's cap respected)."""
        i = self._index.get(id(reserved))
        return self.spans[self.res.index(reserved) if i is None else i]

    def blocking(self, t: datetime, mine: float | None) -> tuple[ActiveRun, int, int] | None:
        """The first reservation a run started at ``t`` (expected to take ``mine`` seconds) would take the
        slot of, with the slots running and reserved at its start; None when it takes none."""
        if t == self.now and mine in self._blocking:
            return self._blocking[mine]
        my_end = t + timedelta(seconds=mine) if mine is not None else None
        hit = None
        # the first reservation starting at or after t (one begun before t holds its slot in the count of
        # every later start) whose slot would be taken, unless the run is done before it starts
        k = bisect_left(self.full, bisect_left(self.starts, t))
        if k < len(self.full):
            i = self.full[k]
            if my_end is None or my_end > self.starts[i]:
                running_then, reserved_then = self.load[i]
                hit = (self.res[i], running_then, reserved_then)
        if t == self.now:
            self._blocking[mine] = hit
        return hit

    def earliest_fit(self, mine: float | None) -> datetime | None:
        """The first time a slot frees (a running run's or a reservation's expected end) at which the run
        would fit: a free slot then, and no reservation's slot taken."""
        if mine in self._fit:
            return self._fit[mine]
        fit = next((t for t in self.free_at() if self.blocking(t, mine) is None), None)
        self._fit[mine] = fit
        return fit

    def free_at(self) -> list[datetime]:
        """The times a slot frees (a running run's or a reservation's expected end), earliest first, at
        which the pool has a free slot (whatever the run asking): computed once per plan."""
        if self._free_at is None:
            ends = {e for e in self.active_ends if e > self.now} | {end for _, end in self.spans if end is not None}
            self._free_at = [t for t in sorted(ends) if self.running_at(t) + self.reserved_at(t) + 1 <= self.cap]
        return self._free_at

    def reserved_at(self, t: datetime) -> int:
        """Reservations holding their slot at ``t``: begun by then, not expected to have ended."""
        if self._ordered:
            return bisect_right(self.starts, t) - bisect_right(self.known_ends, t)
        return sum(1 for start, end in self.spans if start <= t and (end is None or end > t))

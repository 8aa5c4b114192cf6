"""The reservation plan's answers (``blocking``, ``earliest_fit``, the spans and loads) are the ones the
straightforward counting gives: the plan counts with bisections and skips the queue-cap scheduling when
every queue has room, so it is checked here against plain loops over every reservation, on random pools
(unknown durations, ends already past, queues capped below their load, ties in start times)."""

import heapq
import random
from datetime import UTC, datetime, timedelta

import pytest

from releasegate.policy.active_runs import ActiveRun
from releasegate.policy.reservations import ReservationPlan, queue_limited, span

NOW = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


def _spans_by_loop(res, active, now, queue_caps):
    """``queue_limited`` by list scheduling on every queue, whatever its load."""
    spans = [span(r, now) for r in res]
    free = {}
    for q, cap in queue_caps.items():
        ends = sorted(max(a.expected_end or now, now) for a in active if a.queue == q)
        slots = ends[len(ends) - cap :] if len(ends) > cap else [now] * (cap - len(ends)) + ends
        heapq.heapify(slots)
        free[q] = slots
    out = []
    for r, (start, end) in zip(res, spans, strict=True):
        heap = free.get(r.queue or "")
        if not heap:
            out.append((start, end))
            continue
        begin = max(start, heapq.heappop(heap))
        finish = begin + timedelta(seconds=r.expected_seconds) if r.expected_seconds is not None else None
        heapq.heappush(heap, finish or begin)
        out.append((begin, finish))
    return out


class _LoopPlan:
    """The plan's questions answered by counting over every running run and reservation each time."""

    def __init__(self, res, active, now, cap, queue_caps):
        self.cap, self.now, self.active = cap, now, active
        spans = _spans_by_loop(res, active, now, queue_caps)
        order = sorted(range(len(res)), key=lambda i: spans[i][0])
        self.res = [res[i] for i in order]
        self.spans = [spans[i] for i in order]
        self.load = []
        for i, (start, _) in enumerate(self.spans):
            reserved = sum(1 for _, end in self.spans[: i + 1] if end is None or end > start)
            self.load.append((self.running_at(start), reserved))

    def running_at(self, t):
        return sum(1 for a in self.active if a.expected_end is None or a.expected_end > t)

    def blocking(self, t, mine):
        my_end = t + timedelta(seconds=mine) if mine is not None else None
        for i, (start, _) in enumerate(self.spans):
            if start < t:
                continue
            if my_end is not None and my_end <= start:
                return None
            running_then, reserved_then = self.load[i]
            if running_then + reserved_then + 1 > self.cap:
                return (self.res[i], running_then, reserved_then)
        return None

    def earliest_fit(self, mine):
        ends = {a.expected_end for a in self.active if a.expected_end is not None and a.expected_end > self.now}
        ends |= {end for _, end in self.spans if end is not None}
        for t in sorted(ends):
            busy = self.running_at(t) + sum(1 for s, e in self.spans if s <= t and (e is None or e > t))
            if busy + 1 <= self.cap and self.blocking(t, mine) is None:
                return t
        return None


def _minutes(rng: random.Random, lo: int, hi: int) -> timedelta:
    return timedelta(minutes=rng.choice([lo, hi, rng.randint(lo, hi)]))


def _pool(seed: int):
    rng = random.Random(seed)
    queues = ["critical", "bulk"]
    cap = rng.randint(1, 12)
    queue_caps = {"critical": rng.randint(1, cap + 2), "bulk": rng.randint(0, cap)}
    active = [
        ActiveRun(
            flow_run_id=f"a{i}",
            deployment=f"d{i}",
            queue=rng.choice(queues),
            state="running",
            expected_end=None if rng.random() < 0.1 else NOW + _minutes(rng, -10, 90),
        )
        for i in range(rng.randint(0, cap + 3))
    ]
    res = sorted(
        (
            ActiveRun(
                flow_run_id=f"r{i}",
                deployment=f"e{i}",
                queue=rng.choice(queues),
                state="scheduled",
                expected_start=NOW + _minutes(rng, -5, 60),
                expected_seconds=None if rng.random() < 0.1 else rng.choice([0, 600, 1500, rng.randint(60, 5400)]),
            )
            for i in range(rng.randint(0, cap + 4))
        ),
        key=lambda r: r.expected_start,
    )
    return res, active, cap, queue_caps


@pytest.mark.parametrize("seed", range(300))
def test_the_plan_answers_as_counting_every_run_does(seed):
    res, active, cap, queue_caps = _pool(seed)
    fast, loop = ReservationPlan(res, active, NOW, cap, queue_caps), _LoopPlan(res, active, NOW, cap, queue_caps)
    assert queue_limited(res, active, NOW, queue_caps) == _spans_by_loop(res, active, NOW, queue_caps)
    assert fast.spans == loop.spans and fast.load == loop.load
    assert [fast.span_of(r) for r in fast.res] == fast.spans
    times = [NOW, NOW + timedelta(minutes=7), *(s for s, _ in loop.spans), *(e for _, e in loop.spans if e)]
    for mine in (None, 0.0, 60.0, 900.0, 1800.0, 5400.0, 86400.0):
        for t in times:
            assert fast.blocking(t, mine) == loop.blocking(t, mine), (t, mine)
        assert fast.earliest_fit(mine) == loop.earliest_fit(mine), mine
        assert fast.earliest_fit(mine) == loop.earliest_fit(mine)  # remembered, unchanged

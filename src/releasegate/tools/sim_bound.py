"""A lower bound on start delays that no schedule can beat on a simulated workload.

The simulation compares dispatch rules; this module says how far any rule is from the best possible one,
so a table can read "the reservation rule is within 1.3x of the limit" rather than "it is better than
FIFO". The bound holds for every non-preemptive schedule on a pool of ``m`` slots that keeps the change
freezes and maintenance windows (the schedules the gateway may produce), even one that knows every run's
true duration in advance.

The argument, for a threshold ``D`` (minutes):

* A run whose release falls inside a window that covers it cannot start before the window (and any window
  it runs into) has ended: its *effective release* ``r'``; if that alone is later than ``r + D`` the run
  is late (delay > ``D``) in every compliant schedule.
* Take any interval of effective releases ``[a, b)``. A run released in it that starts within ``D`` of its
  release starts in ``[a, b + D]`` and so runs for at least ``min(p, L)`` inside ``[a, b + D + L]`` (``p``
  its duration, ``L`` any look-ahead). The pool offers ``m (b - a + D + L)`` slot-minutes there, so at
  most ``k`` of the interval's runs are on time, ``k`` the largest count whose smallest ``min(p, L)`` fit
  in that capacity; the other runs are late. Runs outside the interval and runs already running at ``a``
  only take capacity away, so leaving them out keeps the bound valid.
* Disjoint intervals hold disjoint runs, so their late counts add up: a dynamic programme over a grid of
  interval boundaries picks the best set of disjoint intervals.

* **EOD on time** (``fixed``): the gateway keeps every EOD run on time, which a schedule free to delay
  EOD need not. Over the schedules that also start each EOD run within ``on_time_minutes`` of its
  (effective) release, an EOD run certainly holds a slot from its latest start to its earliest end, so
  those slot-minutes are taken off every interval's capacity, and EOD runs themselves are never late.
  This is the limit the gateway's rules are measured against (they keep EOD on time); FIFO is measured
  against the first.

``late_lower_bound(D)`` is that count; the share of runs waiting over 30 / 60 min is at least
``late_lower_bound(30 / 60) / n``, and the all-run p95 start delay is at least the largest ``D`` with more
than 5 % of runs forced late (found by bisection, the count being monotone in ``D``). Durations are
floored to whole minutes and runs start on the grid's cells only for counting, both of which can only
weaken the bound. Pure numpy; about a second for a week of 200 deployments.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
from pydantic import BaseModel

from releasegate.policy.capacity import GatewayConfig

GRID_MINUTES = 15
MAX_INTERVAL_CELLS = 48  # intervals of up to 12 h
LOOKAHEADS = (15, 30, 60, 120)


class LowerBound(BaseModel):
    """What no compliant schedule can beat on this workload (pool cap, windows, true durations)."""

    all_delay_p95_minutes: float
    all_sla_alert_share: float  # share of runs that must wait > 30 min (the alert threshold)
    all_sla_incident_share: float  # share of runs that must wait > 60 min
    forced_by_windows: int  # runs released inside a window that covers them
    seconds: float


def effective_releases(releases: list[int], deployments: list[str], gw: GatewayConfig, t0: datetime) -> np.ndarray:
    """Each run's earliest compliant start (seconds from ``t0``): its release, or the end of the windows
    covering its deployment that it was released into (chained)."""
    out = np.array(releases, dtype=np.int64)
    if not gw.windows:
        return out
    for i, (r, dep) in enumerate(zip(releases, deployments, strict=True)):
        t = t0 + timedelta(seconds=r)
        for _ in range(8):  # windows that abut each other: follow the chain a few steps
            ends = [span[1] for w in gw.windows if w.applies_to(dep) and (span := w.active_at(t)) is not None]
            if not ends:
                break
            t = max(ends)
        out[i] = int((t - t0).total_seconds())
    return out


class _Bound:
    def __init__(
        self,
        release_s: np.ndarray,
        effective_s: np.ndarray,
        duration_s: np.ndarray,
        cap: int,
        fixed: np.ndarray | None = None,
        on_time_minutes: float = 0.0,
    ):
        self.n = len(release_s)
        self.cap = cap
        self.fixed = np.zeros(self.n, dtype=bool) if fixed is None else fixed
        # minutes every compliant schedule waits; a fixed run (EOD) is on time by the constraint
        self.forced = np.where(self.fixed, 0.0, (effective_s - release_s) / 60.0)
        cell = (effective_s // (GRID_MINUTES * 60)).astype(np.int64)
        self.cells = int(cell.max()) + 1 if self.n else 1
        self.cell = cell
        self.minutes = np.floor(duration_s / 60.0).astype(np.int64)
        self.max_minutes = int(self.minutes.max()) if self.n else 0
        self.held = self._held(effective_s, duration_s, on_time_minutes)
        self._hist: dict[float, np.ndarray] = {}
        self._late: dict[float, int] = {}

    def _held(self, effective_s: np.ndarray, duration_s: np.ndarray, on_time_minutes: float) -> np.ndarray:
        """Prefix sums over minutes of the slots the fixed runs hold in *every* schedule that starts each
        within ``on_time_minutes`` of its effective release: from its latest start to its earliest end."""
        horizon = self.cells * GRID_MINUTES + 2 * 24 * 60 + 1
        diff = np.zeros(horizon + 1, dtype=np.int64)
        if self.fixed.any():
            first = np.ceil(effective_s[self.fixed] / 60.0 + on_time_minutes).astype(np.int64)
            last = np.floor((effective_s[self.fixed] + duration_s[self.fixed]) / 60.0).astype(np.int64)
            ok = last > first
            np.add.at(diff, np.clip(first[ok], 0, horizon), 1)
            np.add.at(diff, np.clip(last[ok], 0, horizon), -1)
        per_minute = np.cumsum(diff)[:horizon]
        return np.concatenate(([0], np.cumsum(per_minute)))

    def _held_in(self, start_min: np.ndarray, end_min: np.ndarray) -> np.ndarray:
        top = len(self.held) - 1
        return self.held[np.clip(end_min, 0, top)] - self.held[np.clip(start_min, 0, top)]

    def _prefix(self, d: float) -> np.ndarray:
        """Prefix sums over cells of a duration histogram of the runs that could still be on time at ``D``
        (fixed runs left out: they are on time, and the slots they hold are taken off the capacity)."""
        if d not in self._hist:
            keep = (self.forced <= d) & ~self.fixed
            h = np.zeros((self.cells + 1, self.max_minutes + 1), dtype=np.int64)
            np.add.at(h, (self.cell[keep] + 1, self.minutes[keep]), 1)
            self._hist[d] = np.cumsum(h, axis=0)
        return self._hist[d]

    def late(self, d: float) -> int:
        if d in self._late:
            return self._late[d]
        prefix = self._prefix(d)
        forced = int((self.forced > d).sum())
        gains = np.zeros((self.cells + 1, MAX_INTERVAL_CELLS + 1), dtype=np.int64)  # [end cell, length]
        values = np.arange(self.max_minutes + 1)  # duration bins (minutes), ascending: so is min(v, L)
        for length in range(1, min(MAX_INTERVAL_CELLS, self.cells) + 1):
            counts = prefix[length:] - prefix[:-length]  # runs per duration bin, intervals [a, a + length)
            rows = np.arange(counts.shape[0])
            cum_n = np.cumsum(counts, axis=1)
            cum_w_full = np.cumsum(counts * values, axis=1)
            total = cum_n[:, -1]
            on_time = total.copy()  # each look-ahead L bounds the on-time count: keep the tightest
            for la in LOOKAHEADS:
                k = min(la, self.max_minutes)
                work = np.minimum(values, la)
                # cumulative work of the shortest runs first, each run counted as min(p, L)
                cum_w = np.where(values <= k, cum_w_full, cum_w_full[:, k : k + 1] + la * (cum_n - cum_n[:, k : k + 1]))
                span = length * GRID_MINUTES + d + la
                starts = rows * GRID_MINUTES
                held = self._held_in(starts, starts + math.floor(span))  # what fixed runs hold of it
                capacity = (self.cap * span - held)[:, None]
                fit = (cum_w <= capacity).sum(axis=1)  # whole bins taken (cum_w is non-decreasing)
                last = np.maximum(fit - 1, 0)
                taken = np.where(fit > 0, cum_n[rows, last], 0)
                used = np.where(fit > 0, cum_w[rows, last], 0)
                more = fit < len(values)
                nxt = np.minimum(fit, len(values) - 1)
                # then as many runs of the next bin as the rest of the capacity holds
                extra = np.where(more, (capacity[:, 0] - used) // np.maximum(work[nxt], 1), 0)
                extra = np.maximum(extra, 0)
                extra = np.minimum(extra, np.where(more, counts[rows, nxt], 0))
                on_time = np.minimum(on_time, taken + extra)
            gains[length:, length] = total - on_time
        # dp[j]: most late runs from disjoint intervals within cells [0, j)
        dp = np.zeros(self.cells + 1, dtype=np.int64)
        for j in range(1, self.cells + 1):
            top = min(MAX_INTERVAL_CELLS, j)
            cand = dp[j - top : j][::-1] + gains[j, 1 : top + 1]
            dp[j] = max(dp[j - 1], int(cand.max()))
        self._late[d] = forced + int(dp[-1])
        return self._late[d]


def lower_bound(
    release_s: list[int],
    effective_s: np.ndarray,
    duration_s: list[int],
    cap: int,
    sla: tuple[int, int],
    fixed: list[bool] | None = None,
    on_time_minutes: float = 0.0,
) -> LowerBound:
    """The bound over compliant schedules; with ``fixed``, over those that also start every fixed run
    (EOD) within ``on_time_minutes`` of its effective release: the slots those runs then hold are taken
    off every interval's capacity, and they are never late themselves (the constraint)."""
    import time

    wall = time.perf_counter()
    b = _Bound(
        np.array(release_s, dtype=np.int64),
        effective_s,
        np.array(duration_s, dtype=np.int64),
        cap,
        None if fixed is None else np.array(fixed, dtype=bool),
        on_time_minutes,
    )
    n = max(b.n, 1)
    need = math.ceil(0.05 * n) + 2  # more late runs than this: the interpolated p95 exceeds D
    lo, hi = 0.0, 24 * 60.0
    if b.late(lo) < need:
        p95 = 0.0
    else:
        while b.late(hi) >= need and hi < 14 * 24 * 60:
            lo, hi = hi, hi * 2
        while hi - lo > 1.0:
            mid = math.floor((lo + hi) / 2)
            lo, hi = (float(mid), hi) if b.late(mid) >= need else (lo, float(mid))
        p95 = lo
    return LowerBound(
        all_delay_p95_minutes=p95,
        all_sla_alert_share=round(b.late(sla[0]) / n, 4),
        all_sla_incident_share=round(b.late(sla[1]) / n, 4),
        forced_by_windows=int((b.forced > 0).sum()),
        seconds=round(time.perf_counter() - wall, 3),
    )

"""How large a pool keeps EOD on time and the 30-minute deferral SLA: a plan from a workload.

``releasegate capacity plan`` replays a workload (the governed deployments' run history read from
Prefect, or a named simulated workload) through the simulator under the shipped admission rule, on
pools of different sizes, and recommends the smallest pool that meets both goals:

* every EOD run (a run of a deployment in the highest-priority queue) starts on time;
* the p95 of the *open* deferral time is within the SLA's alert minutes (30). The clock is the seed's:
  from when a run could start until it started, for every run that did not start then — a run deferred
  by the gateway and a run that waited for a pool or queue slot alike (both are deferrals: the run
  may not start). "Could start" is when it was due, or the end of the change freeze or maintenance
  window it was due in: a window's deferral is the window's promise, not a capacity one, and no pool
  shortens it.

The search doubles the pool from the configured one until both goals are met, then bisects between the
last pool that failed and the first that met them; every candidate is checked by the simulator, not a
formula. The goals are not strictly monotone in the pool (a larger pool changes which run the gateway
defers when), so the recommendation is the smallest *checked* pool that meets them, and
``exhaustive=True`` checks every pool up to it (the benchmark compares both).
Pure: no Prefect, no I/O; deterministic for a workload.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime

import numpy as np
from pydantic import BaseModel

from releasegate.policy.capacity import GatewayConfig
from releasegate.tools.sim_bound import effective_releases
from releasegate.tools.sim_workload import SimConfig, SimRun
from releasegate.tools.simulate import run_model

__all__ = [
    "CapacityPlan",
    "PlanRow",
    "WhatIf",
    "apply_what_if",
    "could_start",
    "evaluate_pool",
    "history_workload",
    "plan_capacity",
    "scaled_policy",
]

MAX_POOL = 4096


class PlanRow(BaseModel):
    pool: int
    queue_caps: dict[str, int]
    eod_runs: int
    eod_on_time_share: float
    waited_runs: int  # runs that did not start when due (each one a deferral)
    open_p50_minutes: float
    open_p95_minutes: float
    held_p95_minutes: float  # the longest p95 the gateway itself held a run, over the capacity reason codes
    over_60_share: float  # share of all runs whose open time passed the incident level
    utilisation: float
    meets: bool


class CapacityPlan(BaseModel):
    source: str
    runs: int
    deployments: int
    days: float
    admission: str
    configured_pool: int
    sla_minutes: int
    incident_minutes: int
    on_time_minutes: float
    recommended_pool_cap: int | None  # None: no pool up to MAX_POOL meets both goals
    recommended_queue_caps: dict[str, int]
    rows: list[PlanRow]
    seconds: float


@dataclass(frozen=True)
class WhatIf:
    """A change to the workload before it is planned: ``add`` a deployment (runs at the given offsets of
    each day, ``minutes`` long, in ``queue``), ``remove`` one, or move one's runs to new daily times."""

    action: str  # add | remove | times
    deployment: str
    queue: str = ""
    daily_minutes: tuple[int, ...] = ()  # minutes after midnight UTC of each run in a day
    minutes: int = 0


def apply_what_if(runs: list[SimRun], gw: GatewayConfig, days: int, changes: Iterable[WhatIf]) -> list[SimRun]:
    """The workload with ``changes`` applied (a new list; the input is not touched)."""
    out = list(runs)
    for ch in changes:
        if ch.action == "remove":
            out = [r for r in out if r.deployment != ch.deployment]
            continue
        if ch.action == "times":
            old = [r for r in out if r.deployment == ch.deployment]
            if not old:
                raise ValueError(f"what-if: deployment {ch.deployment!r} has no runs in the workload")
            out = [r for r in out if r.deployment != ch.deployment]
            template = old[0]
            durations = [r.duration for r in old]
            ch = WhatIf("add", ch.deployment, template.queue, ch.daily_minutes, int(np.median(durations) // 60) or 1)
            kind, expected = template.kind, template.expected
        else:
            if ch.queue not in {q.name for q in gw.queues}:
                raise ValueError(f"what-if: queue {ch.queue!r} is not in the capacity policy's queues")
            kind = "eod" if ch.queue == _top_queue(gw) else "other"
            expected = ch.minutes * 60
        for day in range(days):
            for m in ch.daily_minutes:
                at = day * 86400 + m * 60
                out.append(SimRun(0, ch.deployment, kind, ch.queue, at, ch.minutes * 60, expected=expected, key=at))
    out.sort(key=lambda r: (r.scheduled, r.deployment))
    for i, r in enumerate(out):
        r.idx = i
    return out


def _top_queue(gw: GatewayConfig) -> str:
    return min(gw.queues, key=lambda q: q.priority).name


def scaled_policy(gw: GatewayConfig, pool: int) -> GatewayConfig:
    """The policy on ``pool`` slots: a queue whose cap was the whole pool keeps the whole pool; a queue
    capped below it keeps its share of the pool (at least one slot)."""
    base = gw.pool_concurrency_limit
    queues = [
        q.model_copy(
            update={
                "concurrency_limit": pool
                if q.concurrency_limit >= base
                else max(1, round(q.concurrency_limit * pool / base))
            }
        )
        for q in gw.queues
    ]
    return gw.model_copy(update={"pool_concurrency_limit": pool, "queues": queues})


def _pct(a: np.ndarray, q: float) -> float:
    return round(float(np.percentile(a, q)), 2) if a.size else 0.0


def could_start(runs: list[SimRun], gw: GatewayConfig, cfg: SimConfig) -> np.ndarray:
    """When each run could start (seconds from the start): when it was due, or the end of the windows
    it was due in. The same on every pool (scaling a pool keeps its windows)."""
    t0 = datetime.combine(cfg.start, dtime(0), tzinfo=UTC)
    return effective_releases([r.scheduled for r in runs], [r.deployment for r in runs], gw, t0)


def evaluate_pool(
    runs: list[SimRun], gw: GatewayConfig, cfg: SimConfig, pool: int, could: np.ndarray | None = None
) -> PlanRow:
    """One pool size through the simulator under ``gw``'s admission rule; ``could``: ``could_start`` of
    ``runs`` when the caller already has it (a plan computes it once for every pool)."""
    scaled = scaled_policy(gw, pool)
    finished: list[SimRun] = []
    res = run_model(runs, scaled, cfg, gated=True, finished=finished, predict_start=False)
    if could is None:
        could = could_start(finished, scaled, cfg)
    waits = np.array(
        [max(0, r.started - int(c)) / 60 for r, c in zip(finished, could, strict=True) if r.started is not None]
    )
    waited = waits[waits > 0]
    capacity = ("PRIORITY_CONFLICT", "CAPACITY_LIMIT", "QUEUE_LIMIT")  # a window's hold is not the pool's
    held = max((s.held_p95_minutes for c, s in res.deferrals_by_reason.items() if c in capacity), default=0.0)
    over_60 = float((waits > cfg.sla_incident_minutes).mean()) if waits.size else 0.0
    open_p95 = _pct(waited, 95)
    return PlanRow(
        pool=pool,
        queue_caps={q.name: q.concurrency_limit for q in scaled.queues},
        eod_runs=res.eod_runs,
        eod_on_time_share=res.eod_on_time_share,
        waited_runs=int(waited.size),
        open_p50_minutes=_pct(waited, 50),
        open_p95_minutes=open_p95,
        held_p95_minutes=held,
        over_60_share=round(over_60, 4),
        utilisation=res.utilisation,
        meets=(res.eod_runs == 0 or res.eod_on_time_share >= 1.0) and open_p95 <= cfg.sla_alert_minutes,
    )


def plan_capacity(
    runs: list[SimRun],
    gw: GatewayConfig,
    cfg: SimConfig,
    source: str,
    exhaustive: bool = False,
    progress: Callable[[PlanRow], None] | None = None,
    tolerance: float = 0.05,
    workers: int | None = None,
) -> CapacityPlan:
    """The smallest pool (from ``gw``'s own upwards) that keeps EOD on time and the open p95 within the
    SLA, searched until the failing and the meeting pool are within ``tolerance`` of each other (0: down
    to one slot); ``exhaustive`` checks every pool up to the answer.

    Every candidate is simulated, two at a time on ``workers`` processes (default: up to 2 cores): the
    pool doubles from the configured one (two sizes per round) until one meets the goals; then each
    round tries where the open p95 crosses the SLA by interpolation (log p95 over pool size) and the
    pool ``tolerance`` below it, which ends the search when the interpolation is right, and a round that
    did not halve the interval tries its thirds instead."""
    wall = time.perf_counter()
    rows: dict[int, PlanRow] = {}
    n = workers if workers is not None else min(2, os.cpu_count() or 1)
    with _Evaluator(runs, gw, cfg, n) as evaluate:

        def check(pools: Iterable[int]) -> None:
            todo = sorted({p for p in pools if p not in rows})
            for row in evaluate(todo):
                rows[row.pool] = row
                if progress:
                    progress(row)

        start = gw.pool_concurrency_limit
        found = _search(check, rows, start, tolerance, float(cfg.sla_alert_minutes))
        if found is not None and exhaustive:
            check(range(1, found))
            found = min(p for p, r in rows.items() if r.meets)
    rec = rows[found].queue_caps if found is not None else {}
    days = (max((r.scheduled for r in runs), default=0) + 1) / 86400
    return CapacityPlan(
        source=source,
        runs=len(runs),
        deployments=len({r.deployment for r in runs}),
        days=round(days, 2),
        admission=gw.admission,
        configured_pool=start,
        sla_minutes=cfg.sla_alert_minutes,
        incident_minutes=cfg.sla_incident_minutes,
        on_time_minutes=cfg.on_time_minutes,
        recommended_pool_cap=found,
        recommended_queue_caps=rec,
        rows=sorted(rows.values(), key=lambda r: r.pool),
        seconds=round(time.perf_counter() - wall, 3),
    )


def _search(
    check: Callable[[Iterable[int]], None], rows: dict[int, PlanRow], start: int, tolerance: float, sla: float
) -> int | None:
    """The doubling and the narrowing of ``plan_capacity`` over ``check`` (which fills ``rows``)."""
    lo, p = 0, max(1, start)  # lo: the largest pool known to fail (0: none checked)
    hi: int | None = None
    while hi is None:
        pair = [p, min(MAX_POOL, 2 * p)]
        check(pair)
        for pool in sorted(set(pair)):
            if rows[pool].meets:
                hi = pool
                break
            lo = pool
        if hi is None:
            if pair[1] >= MAX_POOL:
                return None
            p = min(MAX_POOL, 4 * p)
    thirds = False
    while hi - lo > max(1, int(tolerance * lo)):
        width = hi - lo
        if thirds or lo == 0:
            probes = {lo + width // 3, lo + 2 * width // 3}
        else:
            guess = _crossing(lo, rows[lo], hi, rows[hi], sla)
            probes = {guess, guess - max(1, int(tolerance * lo))}
        probes = {q for q in probes if lo < q < hi} or {(lo + hi) // 2}
        check(probes)
        for pool in sorted(probes):
            if rows[pool].meets:
                hi = pool
                break
            lo = pool
        thirds = hi - lo > width / 2
    return hi


def _crossing(lo: int, at_lo: PlanRow, hi: int, at_hi: PlanRow, target: float) -> int:
    """Where the open p95 reaches the SLA between a failing and a meeting pool, interpolating log p95
    linearly in the pool size (the p95 falls about geometrically as the pool grows); the middle when
    the failing pool fails for another reason (an EOD run late)."""
    a, b = at_lo.open_p95_minutes, at_hi.open_p95_minutes
    if not (a > target >= b > 0) or at_lo.eod_on_time_share < 1.0:
        return (lo + hi) // 2
    frac = (math.log(a) - math.log(target)) / (math.log(a) - math.log(b))
    return int(math.ceil(lo + frac * (hi - lo)))


class _Evaluator:
    """``evaluate_pool`` for several pools at once: in this process (one worker), or on a pool of worker
    processes started once (spawned, not forked: the caller may hold Prefect's client threads), each
    given the workload once."""

    def __init__(self, runs: list[SimRun], gw: GatewayConfig, cfg: SimConfig, workers: int):
        self.args = (runs, gw, cfg, could_start(runs, gw, cfg))
        self.workers = max(1, workers)
        self.executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> Callable[[list[int]], list[PlanRow]]:
        return self.evaluate

    def __exit__(self, *exc: object) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)

    def evaluate(self, pools: list[int]) -> list[PlanRow]:
        if self.workers == 1 or len(pools) < 2:
            runs, gw, cfg, could = self.args
            return [evaluate_pool(runs, gw, cfg, p, could) for p in pools]
        if self.executor is None:
            self.executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=self.args,
            )
        return list(self.executor.map(_evaluate_in_worker, pools))


_WORKLOAD: tuple[list[SimRun], GatewayConfig, SimConfig, np.ndarray] | None = None


def _init_worker(runs: list[SimRun], gw: GatewayConfig, cfg: SimConfig, could: np.ndarray) -> None:
    global _WORKLOAD
    _WORKLOAD = (runs, gw, cfg, could)


def _evaluate_in_worker(pool: int) -> PlanRow:
    assert _WORKLOAD is not None
    runs, gw, cfg, could = _WORKLOAD
    return evaluate_pool(runs, gw, cfg, pool, could)


def history_workload(
    history: list[tuple[str, str, datetime, float]], gw: GatewayConfig, eod_prefix: str = "eod-scoring"
) -> tuple[list[SimRun], date]:
    """Runs read from Prefect — (deployment, queue, expected start, seconds it ran) — as a simulated
    workload from midnight UTC of the first run's day. A run of a deployment named ``eod_prefix…`` is an
    EOD run (judged on time); its expected duration is the longest of its deployment's."""
    if not history:
        raise ValueError("the history holds no run of a governed deployment: nothing to plan from")
    first = min(h[2] for h in history).astimezone(UTC)
    start = first.date()
    t0 = datetime.combine(start, dtime(0), tzinfo=UTC)
    queues = {q.name for q in gw.queues}
    longest: dict[str, int] = {}
    for dep, _, _, secs in history:
        longest[dep] = max(longest.get(dep, 1), int(secs))
    runs: list[SimRun] = []
    for dep, queue, at, secs in sorted(history, key=lambda h: (h[2], h[0])):
        q = queue if queue in queues else _top_queue(gw)
        sec = int((at.astimezone(UTC) - t0).total_seconds())
        kind = "eod" if dep.startswith(eod_prefix) else "other"
        runs.append(SimRun(len(runs), dep, kind, q, sec, max(1, int(secs)), expected=longest[dep], key=sec))
    return runs, start

"""A week of schedules, in virtual time, through the capacity gateway and through Prefect-native dispatch.

``releasegate simulate --days 7 --deployments 200`` builds a workload (EOD scoring on weekdays,
intraday scoring, daily backfills with backfill storms before EOD, weekly retrains, reports), then runs
it three times on the same virtual pool:

* **prefect-native** — what a Prefect work pool does by itself: when a slot is free, the due run of the
  highest-priority queue (earliest first within a queue) starts, within the pool and queue caps.
  Nothing is held back, so a backfill started at 18:20 still holds its slot when EOD is due at 18:30,
  and change freezes are not known to it.
* **releasegate** — the same dispatch, but every handed-out run first asks
  ``releasegate.policy.capacity.evaluate`` (the very rule the flows call; through ``capacity.decider``,
  which reuses one snapshot's answers while the pool does not change) with a snapshot built the way
  ``adapters.prefect_gate.build_snapshot`` builds it: running runs, higher-priority scheduled runs due
  within the priority window that are not deferred. A deferred run goes back to ``Scheduled`` at
  ``next_evaluation_at`` (losing its place, as in Prefect) with its reason code; every minute the
  deferral sweeper wakes the capacity deferrals the gateway would admit now (queue priority first, then
  the oldest), back at their first deferral time (``policy.deferrals.runs_to_wake``, as
  ``adapters.prefect_deferrals.sweep``).
  This is the gateway's first rule (``admission: priority_window``).
* **reservation** — the same gateway with ``admission: reservation`` (EASY backfilling): higher-priority
  runs due within the reservation horizon reserve a slot at their start; a lower-priority run starts when
  it fits without taking a reserved slot; a deferred higher-priority run keeps its reservation at its next
  evaluation (as ``build_snapshot`` does under this rule). Expected durations come from ``capacity.expected_duration``,
  as in the flows: the 90th percentile of the deployment's last 50 completed runs in the simulation,
  until it has 3, the top of its duration range (what its runtime policy's timeout stands for).

Both report: share of EOD runs started on time, p50/p95/max start delay, SLA breaches (start delay past
the deferral SLA: 30 min alert, 60 min incident), runs started inside a freeze or maintenance window,
pool utilisation, and for releasegate the deferral durations by reason code: from a run's first deferral
until the gateway admits it (the clock the sweeper escalates), and the part the gateway itself held it.
Pure: no Prefect, no I/O, the clock is virtual; deterministic for a seed.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

from pydantic import BaseModel

from releasegate.policy.capacity import (
    ActiveRun,
    CapacitySnapshot,
    Deferred,
    GateDecision,
    GatewayConfig,
    RunRequest,
    Window,
    decider,
    expected_duration,
)
from releasegate.policy.deferrals import WAKEABLE, runs_to_wake
from releasegate.policy.start_prediction import QueuedRun, predict_starts
from releasegate.tools.sim_bound import LowerBound, effective_releases, lower_bound
from releasegate.tools.sim_report import ModelResult, ReasonStats, result
from releasegate.tools.sim_workload import WORKLOADS, SimConfig, SimRun, build_workload

__all__ = [
    "WORKLOADS",
    "ModelResult",
    "ReasonStats",
    "SimConfig",
    "SimReport",
    "build_workload",
    "simulate",
    "simulate_workloads",
]

HISTORY = 50  # completed runs per deployment the estimate looks at (as adapters.prefect_gate.HISTORY)


# --------------------------------------------------------------------------------------- engine
def _windows_at(gw: GatewayConfig, now: datetime) -> list[Window]:
    """The windows in force at ``now`` (whichever deployments they cover)."""
    return [w for w in gw.windows if w.active_at(now) is not None]


def run_model(
    runs: list[SimRun],
    gw: GatewayConfig,
    cfg: SimConfig,
    gated: bool,
    wake: bool = True,
    finished: list[SimRun] | None = None,
    predict_start: bool = True,
) -> ModelResult:
    """Dispatch ``runs`` on a virtual pool; ``gated`` asks the capacity gateway (with ``gw``'s admission
    rule) before each start; ``wake``: the deferral sweeper wakes capacity deferrals every minute
    (``policy.deferrals.runs_to_wake``: queue priority, then oldest first; back at their first deferral time).
    ``finished``, when given, receives the dispatched runs (their starts and deferrals); ``predict_start``:
    a run's first capacity deferral predicts its start (``policy.start_prediction``); off, the deferral's
    next evaluation stands for it (cheaper: the plan's pools do without the prediction)."""
    wall = time.perf_counter()
    t0 = datetime.combine(cfg.start, dtime(0), tzinfo=UTC)
    runs = [
        SimRun(r.idx, r.deployment, r.kind, r.queue, r.scheduled, r.duration, expected=r.expected, key=r.scheduled)
        for r in runs
    ]
    prio = {q.name: q.priority for q in gw.queues}
    qcap = {q.name: q.concurrency_limit for q in gw.queues}
    reserving = gw.admission == "reservation"
    horizon_s = (gw.reservation_horizon_minutes if reserving else gw.priority_window_minutes) * 60
    look = gw.pool_concurrency_limit + 1 if reserving else 3  # how many due runs a snapshot needs
    events: list[tuple[int, int, int]] = []  # (time, 0 finish | 1 due | 2 sweep, run idx)
    asleep: dict[int, int] = {}  # deferred run -> the time it is due again (a due event not matching: woken)
    next_sweep = -1  # the time of the pending sweep event, -1: none
    for r in runs:
        events.append((r.scheduled, 1, r.idx))
    heapq.heapify(events)
    waiting: dict[str, list[tuple[int, int]]] = {q: [] for q in prio}  # queue -> heap of (key, idx)
    # each queue's runs by schedule, and the first one not started yet (under the first rule: nor deferred)
    upcoming: dict[str, list[tuple[int, int]]] = {q: [] for q in prio}
    for r in runs:
        upcoming[r.queue].append((r.scheduled, r.idx))
    for h in upcoming.values():
        h.sort()
    head = dict.fromkeys(prio, 0)
    # a scheduled run as the snapshot shows it, remade only when its expected start or duration moves
    shown: dict[int, tuple[int, float, ActiveRun]] = {}
    running: dict[int, ActiveRun] = {}
    running_of: dict[str, set[int]] = {}  # deployment -> its running runs
    asked: dict[int, tuple[int, RunRequest]] = {}  # run -> (its deferrals then, its request)
    in_queue = dict.fromkeys(prio, 0)
    busy = 0
    evaluations = 0
    last_t = 0
    # the gateway's answer function per requesting queue, valid while the pool does not change: a start
    # changes every snapshot, a deferral only those of lower-priority queues (its reservation moves)
    deciders: dict[str, Callable[[RunRequest], GateDecision]] = {}
    # each deployment's completed durations, newest last: the estimate is ``capacity.expected_duration``
    # over its last HISTORY runs, as ``adapters.prefect_gate.expected_durations`` reads them from Prefect
    history: dict[str, list[int]] = {}
    estimates: dict[str, float] = {}

    def estimate(r: SimRun) -> float:
        if r.deployment not in estimates:
            done = history.get(r.deployment, [])[-HISTORY:]
            planned = expected_duration([float(d) for d in done], float(r.expected))
            estimates[r.deployment] = float(r.expected) if planned is None else planned
        return estimates[r.deployment]

    def request_of(r: SimRun) -> RunRequest:
        """The run asking the gateway, at a start a worker asks for or at the sweeper's wake."""
        seconds = estimate(r)
        known = asked.get(r.idx)
        if known is not None and known[0] == r.attempts and known[1].expected_seconds == seconds:
            return known[1]
        req = RunRequest.model_construct(
            flow_run_id=str(r.idx),
            deployment=r.deployment,
            queue=r.queue,
            business_dates=[],
            attempts=r.attempts,
            expected_seconds=seconds,
        )
        asked[r.idx] = (r.attempts, req)
        return req

    def reestimate(deployment: str) -> None:
        """A run of ``deployment`` completed: its running runs are expected to end at their start plus
        the deployment's estimate now (``adapters.prefect_gate`` recomputes it on every snapshot too)."""
        estimates.pop(deployment, None)
        for idx in running_of.get(deployment, ()):
            r, known = runs[idx], running[idx]
            assert r.started is not None
            end = t0 + timedelta(seconds=r.started + estimate(r))
            if known.expected_end != end:
                running[idx] = known.model_copy(update={"expected_end": end})

    def scheduled_run(r: SimRun, key: int) -> ActiveRun:
        """A scheduled run as the snapshot shows it: a reservation at ``key`` for its estimate."""
        seconds = estimate(r)
        known = shown.get(r.idx)
        if known is not None and known[0] == key and known[1] == seconds:
            return known[2]
        run = ActiveRun.model_construct(
            flow_run_id=str(r.idx),
            deployment=r.deployment,
            queue=r.queue,
            state="scheduled",
            expected_start=t0 + timedelta(seconds=key),
            expected_seconds=seconds,
        )
        shown[r.idx] = (key, seconds, run)
        return run

    def snapshot(req: SimRun, now: int) -> CapacitySnapshot:
        ups = []
        limit = now + horizon_s
        for q, p in prio.items():
            if p >= prio[req.queue]:
                continue
            h, i = upcoming[q], head[q]
            # stale: started, or (first rule) deferred: a deferred run is not "upcoming" to the first rule;
            # under the reservation rule a deferred higher-priority run keeps its reservation at its next try
            while i < len(h) and (runs[h[i][1]].started is not None or (runs[h[i][1]].attempts > 0 and not reserving)):
                i += 1
            head[q] = i
            # the ``look`` earliest of the rest; a run's key is never before its schedule, so none past
            # the horizon's schedule can be in it
            for scheduled, idx in h[i : i + look]:
                if scheduled > limit:
                    break
                r = runs[idx]
                key = max(r.key, now)
                if key <= limit and idx != req.idx and r.started is None and (reserving or r.attempts == 0):
                    ups.append(scheduled_run(r, key))
        return CapacitySnapshot.model_construct(active=list(running.values()), upcoming=ups, completed=set())

    typical_of: dict[str, float] = {}

    def typical(r: SimRun) -> float:
        """The prediction's duration: the median of the deployment's last HISTORY runs, from the first one
        (the gateway's estimate, a conservative percentile from the third run and the top of the range
        before, would make the prediction late)."""
        if r.deployment not in typical_of:
            done = [float(d) for d in history.get(r.deployment, [])[-HISTORY:]]
            planned = expected_duration(done, float(r.expected), percentile=50.0, min_samples=1)
            typical_of[r.deployment] = float(r.expected) if planned is None else planned
        return typical_of[r.deployment]

    def queued(r: SimRun, since: int, now: int) -> QueuedRun:
        return QueuedRun.model_construct(
            flow_run_id=str(r.idx),
            queue=r.queue,
            since=t0 + timedelta(seconds=since),
            ready_at=t0 + timedelta(seconds=max(r.scheduled, now)),
            expected_seconds=typical(r),
        )

    def predict(r: SimRun, now: int) -> int:
        """A capacity deferral's predicted start (``policy.start_prediction``): the runs queued before it
        (deferred for capacity, or due and not started), the running runs' expected ends and the
        reservations of the snapshot the gateway decided on."""
        line = [queued(r, now, now)]
        mine = prio[r.queue]
        for i in asleep:
            o = runs[i]
            if i != r.idx and o.last_code in WAKEABLE and o.first_deferred is not None and prio[o.queue] <= mine:
                line.append(queued(o, o.first_deferred, now))
        for q, h in waiting.items():
            if prio[q] <= mine:
                line += [
                    queued(runs[i], k, now) for k, i in h if i != r.idx and i not in asleep and runs[i].started is None
                ]
        now_dt = t0 + timedelta(seconds=now)
        snap = snapshot(r, now)
        active = [  # each running run's end at its median, not the gateway's conservative estimate
            a.model_copy(update={"expected_end": t0 + timedelta(seconds=(runs[i].started or 0) + typical(runs[i]))})
            for i, a in running.items()
        ]
        reserved = [u.model_copy(update={"expected_seconds": typical(runs[int(u.flow_run_id)])}) for u in snap.upcoming]
        at = predict_starts(line, active, reserved, gw, now_dt, until=str(r.idx))[str(r.idx)]
        return int((at - t0).total_seconds())

    def dispatch(now: int) -> None:
        nonlocal busy, evaluations
        deciders.clear()
        in_force: list[Window] | None = None  # the windows in force now, once a run starts
        while len(running) < gw.pool_concurrency_limit:
            best = None
            for q, h in waiting.items():
                if h and in_queue[q] < qcap[q]:
                    cand = (prio[q], h[0][0], h[0][1], q)
                    if best is None or cand < best:
                        best = cand
            if best is None:
                return
            _, _, idx, q = best
            heapq.heappop(waiting[q])
            r = runs[idx]
            if r.started is not None or idx in asleep:  # a stale entry (the run was woken and moved on)
                continue
            now_dt = t0 + timedelta(seconds=now)
            if gated:
                evaluations += 1
                req = request_of(r)
                if q not in deciders:
                    deciders[q] = decider(snapshot(r, now), gw, now_dt)
                d = deciders[q](req)
                if isinstance(d, Deferred):
                    for other in [o for o in deciders if prio[o] > prio[q]]:
                        del deciders[other]
                    code = d.deferral_reason_code.value
                    nxt = int((d.next_evaluation_at - t0).total_seconds())
                    nxt = max(nxt, now + 1)
                    r.attempts += 1
                    r.deferral_count[code] = r.deferral_count.get(code, 0) + 1
                    r.last_code = code
                    r.asleep_from = now
                    if r.first_deferred is None:
                        r.first_deferred = now
                    if r.predicted is None and code in WAKEABLE:
                        r.predicted = predict(r, now) if predict_start else nxt
                    r.key = nxt
                    asleep[idx] = nxt
                    heapq.heappush(events, (nxt, 1, idx))
                    continue
            deciders.clear()
            r.started = now
            if r.first_deferred is not None:  # the deferral is closed when the gateway admits the run
                r.deferred[r.last_code] = now - r.first_deferred
            if in_force is None:
                in_force = _windows_at(gw, now_dt) if gw.windows else []
            r.in_window = any(w.applies_to(r.deployment) for w in in_force)
            running[idx] = ActiveRun.model_construct(
                flow_run_id=str(idx),
                deployment=r.deployment,
                queue=r.queue,
                state="running",
                expected_start=None,
                expected_end=now_dt + timedelta(seconds=estimate(r)),
                expected_seconds=None,
            )
            running_of.setdefault(r.deployment, set()).add(idx)
            in_queue[q] += 1
            busy += r.duration
            heapq.heappush(events, (now + r.duration, 0, idx))

    lowest = max(gw.queues, key=lambda q: q.priority).name
    probe = SimRun(-1, "", "", lowest, 0, 0)  # the sweeper's snapshot: asked as the lowest queue

    def sweep(now: int) -> None:
        """The deferral sweeper: wake the capacity deferrals the gateway would admit now (queue priority,
        then oldest first), back into the queue at their first deferral time (as
        ``adapters.prefect_deferrals`` does). Its questions are not counted in ``gateway_evaluations``
        (those are the starts a worker asks for)."""
        if len(running) >= gw.pool_concurrency_limit:
            return  # a full pool: runs_to_wake would wake nothing
        sleepers = sorted(
            (runs[i] for i, due in asleep.items() if due > now + 60 and runs[i].last_code in WAKEABLE),
            key=lambda r: (r.first_deferred, r.idx),
        )
        if not sleepers:
            return
        now_dt = t0 + timedelta(seconds=now)
        requests = [request_of(r) for r in sleepers]
        for req in runs_to_wake(requests, snapshot(probe, now), gw, now_dt):
            idx = int(req.flow_run_id)
            r = runs[idx]
            del asleep[idx]
            r.held[r.last_code] = r.held.get(r.last_code, 0) + now - r.asleep_from
            r.key = min(r.first_deferred if r.first_deferred is not None else now, now)
            heapq.heappush(waiting[r.queue], (r.key, idx))

    while events:
        t = events[0][0]
        swept = False
        while events and events[0][0] == t:
            _, kind, idx = heapq.heappop(events)
            if kind == 2:
                swept, next_sweep = True, -1
                continue
            r = runs[idx]
            if kind == 0:
                del running[idx]
                running_of[r.deployment].discard(idx)
                in_queue[r.queue] -= 1
                history.setdefault(r.deployment, []).append(r.duration)
                reestimate(r.deployment)
                typical_of.pop(r.deployment, None)
            elif r.attempts and asleep.get(idx) != t:
                continue  # woken by the sweeper before this planned evaluation
            else:
                if asleep.pop(idx, None) is not None:
                    r.held[r.last_code] = r.held.get(r.last_code, 0) + t - r.asleep_from
                heapq.heappush(waiting[r.queue], (r.key, idx))
        if swept:
            sweep(t)
        dispatch(t)
        if wake and gated and asleep and next_sweep < 0:  # the sweeper runs every minute
            next_sweep = (t // 60 + 1) * 60
            heapq.heappush(events, (next_sweep, 2, -1))
        last_t = t

    name = ("releasegate-reservation" if reserving else "releasegate") if gated else "prefect-native"
    if finished is not None:
        finished.extend(runs)
    return result(name, runs, cfg, gw, busy, last_t, evaluations, wall)


class SimReport(BaseModel):
    config: SimConfig
    workload: str = "custom"
    pool_cap: int
    runs_by_kind: dict[str, int]
    prefect_native: ModelResult
    releasegate: ModelResult  # the first rule (priority window)
    reservation: ModelResult  # the reservation rule
    lower_bound: LowerBound  # what no schedule that keeps the windows can beat
    lower_bound_eod: LowerBound | None = None  # ... and that starts every EOD run on time, as the gateway does
    seconds: float


def simulate(cfg: SimConfig, workload: str = "custom") -> SimReport:
    wall = time.perf_counter()
    runs, gw, kinds = build_workload(cfg)
    native = run_model(runs, gw, cfg, gated=False)
    # the first rule defers by a backoff: its prediction is the next evaluation, as before
    gated = run_model(
        runs, gw.model_copy(update={"admission": "priority_window"}), cfg, gated=True, predict_start=False
    )
    reserved = run_model(runs, gw.model_copy(update={"admission": "reservation"}), cfg, gated=True)
    t0 = datetime.combine(cfg.start, dtime(0), tzinfo=UTC)
    effective = effective_releases([r.scheduled for r in runs], [r.deployment for r in runs], gw, t0)
    common = (
        [r.scheduled for r in runs],
        effective,
        [r.duration for r in runs],
        gw.pool_concurrency_limit,
        (cfg.sla_alert_minutes, cfg.sla_incident_minutes),
    )
    bound = lower_bound(*common)
    bound_eod = lower_bound(*common, fixed=[r.kind == "eod" for r in runs], on_time_minutes=cfg.on_time_minutes)
    return SimReport(
        config=cfg,
        workload=workload,
        pool_cap=gw.pool_concurrency_limit,
        runs_by_kind=kinds,
        prefect_native=native,
        releasegate=gated,
        reservation=reserved,
        lower_bound=bound,
        lower_bound_eod=bound_eod,
        seconds=round(time.perf_counter() - wall, 3),
    )


def simulate_workloads(
    names: list[str], base: SimConfig, progress: Callable[[str, int, int], None] | None = None
) -> list[SimReport]:
    """The named workloads (``WORKLOADS``) on top of ``base`` (days, deployments, seed, shipped policy)."""
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise ValueError(f"workloads: unknown {unknown or names}; choose from {sorted(WORKLOADS)} or 'all'")
    out = []
    for i, n in enumerate(names, 1):
        if progress:
            progress(n, i, len(names))
        out.append(simulate(SimConfig(**(base.model_dump() | WORKLOADS[n])), workload=n))
    return out

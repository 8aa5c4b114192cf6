"""The simulated week's workload: EOD scoring on weekdays, intraday scoring, daily backfills with
backfill storms before EOD, weekly retrains, reports, on one pool with a critical and a bulk queue,
a Wednesday change freeze and Sunday maintenance (``SimConfig`` says how much of each), and the four
named workloads ``releasegate simulate --workloads`` judges the gateway on. Deterministic for a seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

import numpy as np
from cronsim import CronSim
from pydantic import BaseModel, Field

from releasegate.policy.capacity import DeploymentGate, GatewayConfig, QueueConfig, Window

ZRH = "Europe/Zurich"
CRITICAL, BULK = "critical", "bulk"


class SimConfig(BaseModel):
    days: int = Field(7, ge=1, le=62)
    deployments: int = Field(200, ge=5, le=5000)
    seed: int = 42
    start: date = date(2026, 11, 23)  # a Monday
    pool_cap: int | None = Field(None, ge=1, description="default: deployments // 10, at least 4")
    critical_cap: int | None = Field(None, ge=1, description="default: the pool cap (no reserved slots)")
    bulk_cap: int | None = Field(None, ge=1, description="default: the pool cap (no reserved slots)")
    priority_window_minutes: int = 15
    backoff_seconds: list[int] = Field(default_factory=lambda: [60, 120, 300, 600])
    on_time_minutes: float = 5.0
    sla_alert_minutes: int = 30
    sla_incident_minutes: int = 60
    storm_weekdays: list[int] = Field(default_factory=lambda: [1, 3], description="0 = Monday")
    storm_runs_per_backfill: int = 3
    storm_local_time: dtime = dtime(17, 40)
    eod_freeze_weekdays: list[int] = Field(
        default_factory=list, description="days (0 = Monday) with a change freeze on bulk runs 16:00-20:00"
    )

    pool_scale: float = Field(1.0, gt=0, le=10, description="scales the pool cap (a smaller pool: < 1)")

    @property
    def pool(self) -> int:
        return max(1, round((self.pool_cap or max(4, self.deployments // 10)) * self.pool_scale))


@dataclass(slots=True)
class SimRun:
    idx: int
    deployment: str
    kind: str
    queue: str
    scheduled: int  # seconds since the simulation start
    duration: int
    expected: int = 0  # the fallback estimate: the top of its range (what a runtime policy's timeout gives)
    key: int = 0  # current expected start (moves when deferred)
    attempts: int = 0
    started: int | None = None
    # reason -> seconds from its first deferral to its start (the deferral's SLA clock), under the last
    # reason it was deferred for (the one the sweeper escalates)
    deferred: dict[str, int] = field(default_factory=dict)
    first_deferred: int | None = None
    last_code: str = ""
    held: dict[str, int] = field(default_factory=dict)  # reason -> seconds the gateway held it (deferred, not due)
    asleep_from: int = 0  # when its current deferral began
    deferral_count: dict[str, int] = field(default_factory=dict)  # reason -> number of deferrals
    in_window: bool = False
    # its first capacity deferral's predicted start (policy.start_prediction, or that deferral's next evaluation)
    predicted: int | None = None


# ----------------------------------------------------------------------------------- workload
def _cron_times(expr: str, tz: str, start: datetime, end: datetime) -> list[datetime]:
    out = []
    for t in CronSim(expr, start.astimezone(ZoneInfo(tz))):
        if t >= end:
            break
        out.append(t)
    return out


def build_workload(cfg: SimConfig) -> tuple[list[SimRun], GatewayConfig, dict[str, int]]:
    rng = np.random.default_rng(cfg.seed)
    t0 = datetime.combine(cfg.start, dtime(0), tzinfo=UTC)
    t_end = t0 + timedelta(days=cfg.days)
    n = cfg.deployments
    counts = {"eod": max(1, n // 10), "scoring": max(1, n // 10), "retrain": max(1, n // 10), "report": max(1, n // 5)}
    counts["backfill"] = max(1, n - sum(counts.values()))
    specs: list[tuple[str, str, str, list[str], str, tuple[int, int]]] = []  # name, kind, queue, crons, tz, minutes
    for i in range(counts["eod"]):
        h, m = divmod(18 * 60 + 15 * (i % 5), 60)  # 18:00 .. 19:00 local
        specs.append((f"eod-{i}", "eod", CRITICAL, [f"{m} {h} * * 1-5"], ZRH, (10, 25)))
    for i in range(counts["scoring"]):
        specs.append((f"scoring-{i}", "scoring", CRITICAL, [f"{i % 60} 8-16/2 * * 1-5"], ZRH, (3, 8)))
    for i in range(counts["backfill"]):
        h, m = int(rng.integers(0, 24)), int(rng.integers(0, 60))
        specs.append((f"backfill-{i}", "backfill", BULK, [f"{m} {h} * * *"], ZRH, (15, 45)))
    for i in range(counts["retrain"]):
        d, h = int(rng.integers(0, 7)), int(rng.integers(0, 24))
        specs.append((f"retrain-{i}", "retrain", BULK, [f"{i % 60} {h} * * {(d + 1) % 7}"], ZRH, (30, 90)))
    for i in range(counts["report"]):
        specs.append((f"report-{i}", "report", BULK, [f"{i % 60} */4 * * *"], "UTC", (5, 15)))

    runs: list[SimRun] = []

    def add(name: str, kind: str, queue: str, at: datetime, minutes: tuple[int, int]) -> None:
        sec = int((at - t0).total_seconds())
        dur = int(rng.integers(minutes[0] * 60, minutes[1] * 60 + 1))
        runs.append(SimRun(len(runs), name, kind, queue, sec, dur, expected=minutes[1] * 60, key=sec))

    for name, kind, queue, crons, tz, minutes in specs:
        for expr in crons:
            for at in _cron_times(expr, tz, t0 - timedelta(seconds=1), t_end):
                add(name, kind, queue, at, minutes)
    # Backfill storms: partitions re-arrive late in the afternoon and every backfill deployment reruns.
    zrh = ZoneInfo(ZRH)
    for day in range(cfg.days):
        storm_date = cfg.start + timedelta(days=day)
        if storm_date.weekday() not in cfg.storm_weekdays:
            continue
        base = datetime.combine(storm_date, cfg.storm_local_time, tzinfo=zrh)
        for name, kind, queue, _, _, minutes in specs:
            if kind == "backfill":
                for k in range(cfg.storm_runs_per_backfill):
                    add(name, kind, queue, base + timedelta(seconds=int(rng.integers(0, 20 * 60)) + k), minutes)

    bulk_names = [s[0] for s in specs if s[1] in ("backfill", "retrain")]
    eod_freeze = (
        []
        if not cfg.eod_freeze_weekdays
        else [
            Window(
                name="eod-change-freeze",
                kind="change_freeze",
                timezone=ZRH,
                recurrence="weekly",
                weekdays=cfg.eod_freeze_weekdays,
                start_time=dtime(16, 0),
                duration_minutes=240,
                deployments=bulk_names,
            )
        ]
    )
    gateway = GatewayConfig(
        pool_name="sim",
        pool_concurrency_limit=cfg.pool,
        queues=[
            QueueConfig(name=CRITICAL, priority=1, concurrency_limit=cfg.critical_cap or cfg.pool),
            QueueConfig(name=BULK, priority=10, concurrency_limit=cfg.bulk_cap or cfg.pool),
        ],
        deployments={s[0]: DeploymentGate(queue=s[2]) for s in specs},
        priority_window_minutes=cfg.priority_window_minutes,
        backoff_seconds=cfg.backoff_seconds,
        windows=[
            Window(
                name="wednesday-change-freeze",
                kind="change_freeze",
                timezone=ZRH,
                recurrence="weekly",
                weekdays=[2],
                start_time=dtime(10, 0),
                duration_minutes=240,
                deployments=bulk_names,
            ),
            Window(
                name="sunday-maintenance",
                kind="maintenance",
                timezone=ZRH,
                recurrence="weekly",
                weekdays=[6],
                start_time=dtime(2, 0),
                duration_minutes=120,
            ),
            *eod_freeze,
        ],
        sla_alert_minutes=cfg.sla_alert_minutes,
        sla_incident_minutes=cfg.sla_incident_minutes,
    )
    runs.sort(key=lambda r: (r.scheduled, r.idx))
    for i, r in enumerate(runs):
        r.idx = i
    return runs, gateway, {k: sum(1 for r in runs if r.kind == k) for k in counts}


# The four workloads the scheduling issue asks the gateway to be judged on (`simulate --workloads all`).
WORKLOADS: dict[str, dict[str, object]] = {
    "default": {},  # 200 deployments, pool 20, backfill storms before EOD on Tuesday and Thursday
    "heavy-storm": {"storm_runs_per_backfill": 6},  # twice the storm
    "small-pool": {"pool_scale": 0.7},  # the same week on 70 % of the slots
    "eod-freeze": {"eod_freeze_weekdays": [1, 3]},  # bulk runs frozen 16:00-20:00 on the storm days
}

"""What a simulated dispatch model reports: start delays, SLA shares, deferrals by reason code."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import BaseModel, Field


class ReasonStats(BaseModel):
    """Per reason code: ``deferrals`` counts every deferral for it, ``runs`` every run deferred for it at
    least once. ``p50/p95/max``: over the ``open_runs`` whose *last* deferral had it (a run's open time
    is counted once, under the code that held it last), from its first deferral until the gateway admitted
    it, the clock the deferral sweeper escalates at 30 and 60 min; ``held_p95``: over every run deferred
    for it, only the time the gateway itself held the run for it (deferred, before its next evaluation or
    wake), not the time it then waited in Prefect's queue for a slot like any other run."""

    deferrals: int
    runs: int
    open_runs: int = 0
    p50_minutes: float
    p95_minutes: float
    max_minutes: float
    held_p95_minutes: float = 0.0


class ModelResult(BaseModel):
    model: str
    runs: int
    started: int
    eod_runs: int
    eod_on_time_share: float
    eod_delay_p50_minutes: float
    eod_delay_p95_minutes: float
    eod_delay_max_minutes: float
    eod_sla_alert_share: float
    eod_sla_incident_share: float
    all_delay_p50_minutes: float
    all_delay_p95_minutes: float
    all_sla_alert_share: float
    all_sla_incident_share: float
    started_in_window: int
    utilisation: float
    gateway_evaluations: int = 0
    deferrals_by_reason: dict[str, ReasonStats] = Field(default_factory=dict)
    # |start - predicted start| of runs whose first capacity deferral predicted one (under the reservation
    # rule ``policy.start_prediction``'s list schedule; under the first rule the deferral's next
    # evaluation, a backoff, so large there)
    prediction_runs: int = 0
    prediction_error_p50_minutes: float = 0.0
    prediction_error_p95_minutes: float = 0.0
    seconds: float


def _pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) if a.size else 0.0


def result(
    name: str, runs: list[Any], cfg: Any, gw: Any, busy: int, makespan: int, evaluations: int, wall: float
) -> ModelResult:
    """Summarise one dispatch model's runs (``SimRun``s) into its ``ModelResult``."""
    started = [r for r in runs if r.started is not None]
    delay = np.array([(r.started - r.scheduled) / 60 for r in started])
    eod = np.array([(r.started - r.scheduled) / 60 for r in started if r.kind == "eod"])
    n_eod = sum(1 for r in runs if r.kind == "eod")
    by_reason: dict[str, ReasonStats] = {}
    if evaluations:
        reasons = sorted({k for r in runs for k in r.deferral_count})
        for code in reasons:
            per_run = np.array([r.deferred[code] / 60 for r in runs if code in r.deferred])
            held = np.array([r.held[code] / 60 for r in runs if code in r.held])
            by_reason[code] = ReasonStats(
                deferrals=sum(r.deferral_count.get(code, 0) for r in runs),
                runs=sum(1 for r in runs if code in r.deferral_count),
                open_runs=int(per_run.size),
                p50_minutes=round(_pct(per_run, 50), 2),
                p95_minutes=round(_pct(per_run, 95), 2),
                max_minutes=round(float(per_run.max()) if per_run.size else 0.0, 2),
                held_p95_minutes=round(_pct(held, 95), 2),
            )
    errors = np.array([abs(r.started - r.predicted) / 60 for r in started if r.predicted is not None])
    return ModelResult(
        model=name,
        runs=len(runs),
        started=len(started),
        eod_runs=n_eod,
        eod_on_time_share=round(float((eod <= cfg.on_time_minutes).mean()) if eod.size else 0.0, 4),
        eod_delay_p50_minutes=round(_pct(eod, 50), 2),
        eod_delay_p95_minutes=round(_pct(eod, 95), 2),
        eod_delay_max_minutes=round(float(eod.max()) if eod.size else 0.0, 2),
        eod_sla_alert_share=round(float((eod > cfg.sla_alert_minutes).mean()) if eod.size else 0.0, 4),
        eod_sla_incident_share=round(float((eod > cfg.sla_incident_minutes).mean()) if eod.size else 0.0, 4),
        all_delay_p50_minutes=round(_pct(delay, 50), 2),
        all_delay_p95_minutes=round(_pct(delay, 95), 2),
        all_sla_alert_share=round(float((delay > cfg.sla_alert_minutes).mean()) if delay.size else 0.0, 4),
        all_sla_incident_share=round(float((delay > cfg.sla_incident_minutes).mean()) if delay.size else 0.0, 4),
        started_in_window=sum(1 for r in started if r.in_window),
        utilisation=round(busy / (gw.pool_concurrency_limit * makespan), 4) if makespan else 0.0,
        gateway_evaluations=evaluations,
        deferrals_by_reason=by_reason,
        prediction_runs=int(errors.size),
        prediction_error_p50_minutes=round(_pct(errors, 50), 2),
        prediction_error_p95_minutes=round(_pct(errors, 95), 2),
        seconds=round(time.perf_counter() - wall, 3),
    )


WORKLOAD_COLUMNS = (
    "workload",
    "model",
    "EOD on time",
    "PRIORITY_CONFLICT open p50/p95/max min",
    "held p95 min",
    "CAPACITY+QUEUE p95 min",
    "all-run p95 min",
    "> 30 min",
    "> 60 min",
    "utilisation",
    "p95 / bound (any / EOD on time)",
)


def workload_rows(report: Any) -> list[tuple[str, ...]]:
    """The rows of one workload (a ``SimReport``) in the ``--workloads`` table, as text: the three dispatch
    models, then the lower bound. ``releasegate simulate`` and ``make bench`` print the same rows."""
    pct = lambda v: f"{v:.1%}"  # noqa: E731
    b, e = report.lower_bound, report.lower_bound_eod
    head = f"{report.workload} (pool {report.pool_cap}, {report.prefect_native.runs:,} runs, {report.seconds:.1f} s)"
    rows: list[tuple[str, ...]] = []
    models = (("prefect-native", report.prefect_native), ("priority window", report.releasegate))
    for i, (label, m) in enumerate((*models, ("reservation", report.reservation))):
        pc = m.deferrals_by_reason.get("PRIORITY_CONFLICT")
        caps = [
            m.deferrals_by_reason[c].p95_minutes
            for c in ("CAPACITY_LIMIT", "QUEUE_LIMIT")
            if c in m.deferrals_by_reason
        ]
        # the second bound holds only for schedules that keep EOD on time
        kept = m.eod_on_time_share >= 1.0
        ratio = _ratio(m.all_delay_p95_minutes, b) + " / " + (_ratio(m.all_delay_p95_minutes, e) if kept else "-")
        rows.append(
            (
                head if i == 0 else "",
                label,
                pct(m.eod_on_time_share),
                f"{pc.p50_minutes:.0f} / {pc.p95_minutes:.0f} / {pc.max_minutes:.0f}" if pc else "-",
                f"{pc.held_p95_minutes:.0f}" if pc else "-",
                f"{max(caps):.0f}" if caps else "-",
                f"{m.all_delay_p95_minutes:.0f}",
                pct(m.all_sla_alert_share),
                pct(m.all_sla_incident_share),
                pct(m.utilisation),
                ratio,
            )
        )
    for label, bound in (("lower bound", b), ("bound, EOD on time", e)):
        if bound is None:
            continue
        rows.append(
            (
                "",
                label,
                "" if bound is b else "100.0%",
                "",
                "",
                "",
                f">= {bound.all_delay_p95_minutes:.0f}",
                f">= {pct(bound.all_sla_alert_share)}",
                f">= {pct(bound.all_sla_incident_share)}",
                "",
                "",
            )
        )
    return rows


def _ratio(p95: float, bound: Any) -> str:
    if bound is None or not bound.all_delay_p95_minutes:
        return "-"
    return f"{p95 / bound.all_delay_p95_minutes:.2f}x"

"""Capacity plan: the recommended pool per workload against an exhaustive search, the goals at that pool,
the predicted-start error, and the time of a plan over 4 weeks x 200 deployments (goal <= 30 s).

Run by hand: ``.venv/bin/python bench/plan_bench.py`` (also part of ``make bench``); ``--smoke`` runs
the same on one day of 30 deployments in seconds (``make test`` runs it, so the bench cannot rot).

* **recommended vs exhaustive** (goal <= 1.1x): ``plan_capacity`` (doubling, then bisection to 5 %)
  and, in the same run, every pool from 1 up to its answer through the simulator: the smallest pool that
  meets both goals (every EOD run on time, open deferral p95 <= 30 min).
* **at the recommended pool**: EOD on time, open p95, the gateway's PRIORITY_CONFLICT / CAPACITY_LIMIT /
  QUEUE_LIMIT open p95, and the predicted start's absolute error (p50/p95; goal p95 <= 15 min).
* **plan time**: the bisection plan of 28 days x 200 deployments (the default workload's shape).
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Row, emit  # noqa: E402


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path)
    p.add_argument("--smoke", action="store_true", help="tiny sizes: a check that the bench runs, in seconds")
    p.add_argument("--workloads", default="all")
    a = p.parse_args()

    from releasegate.tools.capacity_plan import evaluate_pool, plan_capacity, scaled_policy
    from releasegate.tools.sim_workload import WORKLOADS, SimConfig, build_workload
    from releasegate.tools.simulate import run_model

    days, deployments = (1, 30) if a.smoke else (7, 200)
    names = list(WORKLOADS) if a.workloads == "all" else a.workloads.split(",")
    rows: list[Row] = []
    for name in names:
        cfg = SimConfig(days=days, deployments=deployments, **WORKLOADS[name])
        if a.smoke:
            cfg = cfg.model_copy(update={"storm_weekdays": [0]})
        runs, gw, _ = build_workload(cfg)
        gw = gw.model_copy(update={"admission": "reservation"})
        t0 = time.perf_counter()
        plan = plan_capacity(runs, gw, cfg, name)
        t_plan = time.perf_counter() - t0
        rec = plan.recommended_pool_cap
        if rec is None:
            rows.append(Row("plan", f"{name}: recommended pool", float("nan"), "slots", note="none up to 4096"))
            continue
        checked = {r.pool: r for r in plan.rows}
        for pool in range(1, rec):
            if pool not in checked:
                checked[pool] = evaluate_pool(runs, gw, cfg, pool)
        smallest = min(pl for pl, r in checked.items() if r.meets)
        at = checked[rec]
        res = run_model(runs, scaled_policy(gw, rec), cfg, gated=True)
        by = res.deferrals_by_reason
        gateway_p95 = max(
            (by[c].p95_minutes for c in ("PRIORITY_CONFLICT", "CAPACITY_LIMIT", "QUEUE_LIMIT") if c in by), default=0.0
        )
        rows += [
            Row(
                "plan",
                f"{name}: recommended pool (configured {gw.pool_concurrency_limit})",
                rec,
                "slots",
                "<= 1.1x exhaustive",
                f"exhaustive smallest {smallest}: {rec / smallest:.2f}x; plan {t_plan:.1f} s",
            ),
            Row("plan", f"{name}: EOD on time at the recommended pool", at.eod_on_time_share * 100, "%", "100"),
            Row(
                "plan",
                f"{name}: open deferral p95 at the recommended pool",
                at.open_p95_minutes,
                "min",
                "<= 30",
                f"waited {at.waited_runs} runs; held p95 {at.held_p95_minutes}",
            ),
            Row("plan", f"{name}: gateway deferral open p95 at the recommended pool", gateway_p95, "min", "<= 30"),
            Row(
                "plan",
                f"{name}: predicted start error p50 / p95",
                res.prediction_error_p95_minutes,
                "min (p95)",
                "p95 <= 15",
                f"p50 {res.prediction_error_p50_minutes} over {res.prediction_runs} runs",
            ),
        ]
    wdays = 2 if a.smoke else 28
    cfg = SimConfig(days=wdays, deployments=deployments)
    runs, gw, _ = build_workload(cfg)
    t0 = time.perf_counter()
    plan = plan_capacity(runs, gw.model_copy(update={"admission": "reservation"}), cfg, "default-4w")
    rows.append(
        Row(
            "plan",
            f"plan over {wdays} days x {deployments} deployments",
            time.perf_counter() - t0,
            "s",
            "<= 30",
            f"{len(plan.rows)} pools simulated; recommended {plan.recommended_pool_cap}",
        )
    )
    emit(rows, a.json)


if __name__ == "__main__":
    main()

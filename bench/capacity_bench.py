"""Capacity gateway over 10,000 pending runs (goal <= 1 s), and the week simulation (goal <= 10 s).

Run by hand: ``.venv/bin/python bench/capacity_bench.py`` (also part of ``make bench``); ``--smoke``:
500 pending runs and one simulated day of 30 deployments.

* **10,000 pending runs**: ``capacity.evaluate_many`` decides every pending run once against one
  snapshot of the pool and the 10,000 scheduled runs (the critical ones within the priority window
  block the bulk ones): the decision for the whole backlog. Pure Python; fixed seed; median of 5 after
  a warm-up. (Asking ``evaluate`` 10,000 times separately rescans the snapshot each time: ~24 s.)
* **single evaluation** with that 10,000-run snapshot.
* **simulate 7 days x 200 deployments**: ``releasegate simulate``'s engine, both models.
"""

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Row, args, emit, measure, med  # noqa: E402


def main() -> None:
    a = args(__doc__.splitlines()[0])
    import numpy as np

    from releasegate.adapters.config import capacity_from_file
    from releasegate.policy.capacity import ActiveRun, CapacitySnapshot, RunRequest, evaluate, evaluate_many
    from releasegate.tools.simulate import SimConfig, simulate

    n_pending, days, deployments = (500, 1, 30) if a.smoke else (10_000, 7, 200)
    cfg = capacity_from_file().model_copy(update={"windows": []})
    now = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
    rng = np.random.default_rng(42)
    pending = [
        ActiveRun(
            flow_run_id=f"p{i}",
            deployment="backfill" if i % 10 else "eod-scoring",
            queue="bulk" if i % 10 else "critical",
            state="scheduled",
            expected_start=now + timedelta(seconds=int(rng.integers(0, 6 * 3600))),
        )
        for i in range(n_pending)
    ]
    active = [ActiveRun(flow_run_id=f"a{i}", deployment="backfill", queue="bulk", state="running") for i in range(2)]
    snap = CapacitySnapshot(active=active, upcoming=pending)
    requests = [RunRequest(flow_run_id=r.flow_run_id, deployment=r.deployment, queue=r.queue) for r in pending]

    def backlog():
        return evaluate_many(requests, snap, cfg, now)

    repeats = a.repeats or (1 if a.smoke else 5)
    t_backlog = measure(backlog, repeats)
    decisions = backlog()
    deferred = sum(not d.admitted for d in decisions)
    singles, sims = (5, 1) if a.smoke else (50, 3)
    t_single = measure(lambda: evaluate(requests[1], snap, cfg, now), singles)
    t_sim = measure(lambda: simulate(SimConfig(days=days, deployments=deployments)), sims, warmup=0 if a.smoke else 1)
    rows = [
        Row(
            "capacity",
            f"{n_pending:,} pending runs, one decision each",
            med(t_backlog),
            "s",
            "<= 1 s",
            f"median of {repeats}; {deferred:,} deferred",
        ),
        Row(
            "capacity",
            f"one decision, {n_pending:,}-run snapshot",
            med(t_single) * 1000,
            "ms",
            "",
            f"median of {singles}",
        ),
        Row(
            "simulate",
            f"{days} days x {deployments} deployments, both models",
            med(t_sim),
            "s",
            "<= 10 s",
            f"median of {sims}",
        ),
    ]
    emit(rows, a.json)


if __name__ == "__main__":
    main()

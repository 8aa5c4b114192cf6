"""Event intake: duplicates answered without Prefect, and unique event -> flow run vs raw Prefect.

Run by hand: ``.venv/bin/python bench/intake_bench.py`` (also part of ``make bench``); ``--smoke``: 200
duplicates and 3 unique events.

* **duplicate answers/s** (goal >= 2,000/s): the same event redelivered; intake validates it, finds the
  key in the dedupe table (SQLite, one indexed read) and answers ``duplicate`` with the run id. The
  ``create_run`` callable counts calls: it must stay at zero for duplicates.
* **unique event -> flow run created** (p50/p95): a new event through ``send_event`` (validation,
  claim, ``create_flow_run_from_deployment`` with the idempotency key, decision record, Prefect event),
  next to a raw ``create_flow_run_from_deployment`` on the same ephemeral server in the same run.
"""

import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Row, args, emit, isolated_home, med, pct  # noqa: E402


def event(key: str, day: str = "2026-11-20") -> dict:
    return {
        "event_id": f"ev-{uuid.uuid4().hex[:8]}",
        "event_type": "data.partition.arrived@v1",
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "bench",
        "idempotency_key": key,
        "payload": {"dataset": "positions", "business_date": day},
    }


def main() -> None:
    a = args(__doc__.splitlines()[0])
    isolated_home()
    from releasegate import bootstrap
    from releasegate.adapters.config import load_routes
    from releasegate.services.intake import intake_event

    store, log, routes = bootstrap.scheduling_store(), bootstrap.decision_log(), load_routes()
    calls = []

    def create_run(deployment, parameters, key):
        calls.append(key)
        return str(uuid.uuid4())

    first = intake_event(
        event("dup-1"), routes=routes, store=store, log=log, create_run=create_run, now=datetime.now(UTC)
    )
    assert first.status == "created" and len(calls) == 1
    n = a.repeats or (200 if a.smoke else 5000)
    dup = event("dup-1")
    for _ in range(20 if a.smoke else 200):  # warm-up
        intake_event(dup, routes=routes, store=store, log=log, create_run=create_run, now=datetime.now(UTC))
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            r = intake_event(dup, routes=routes, store=store, log=log, create_run=create_run, now=datetime.now(UTC))
        rates.append(n / (time.perf_counter() - t0))
        assert r.status == "duplicate" and r.flow_run_id == first.flow_run_id
    assert len(calls) == 1, "a duplicate must not call Prefect"

    from prefect import get_client
    from prefect.testing.utilities import prefect_test_harness

    from flows.backfill import backfill
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up
    from releasegate.adapters.prefect_runs import send_event

    with prefect_test_harness(server_startup_timeout=120):
        app = bootstrap.app()
        infra_up(capacity_from_file())
        dep_id = backfill.to_deployment(name="backfill", work_pool_name="releasegate", work_queue_name="bulk").apply()
        m, warm = (a.repeats or 3, 1) if a.smoke else (a.repeats or 50, 5)
        ours, raw = [], []
        with get_client(sync_client=True) as c:
            for i in range(m + warm):  # warm-up first, interleaved so both see the same server load
                t0 = time.perf_counter()
                res = send_event(app, event(f"uniq-{uuid.uuid4().hex}", date(2026, 1, 1 + i % 28).isoformat()))
                t1 = time.perf_counter()
                c.create_flow_run_from_deployment(
                    dep_id,
                    parameters={"start_date": "2026-01-01", "end_date": "2026-01-01"},
                    idempotency_key=f"raw-{uuid.uuid4().hex}",
                )
                t2 = time.perf_counter()
                assert res.status == "created"
                if i >= warm:
                    ours.append(t1 - t0)
                    raw.append(t2 - t1)

    rows = [
        Row(
            "intake",
            "duplicate answers per second",
            med(rates),
            "/s",
            ">= 2,000/s",
            f"median of 3 x {n}, 0 Prefect calls",
        ),
        Row("intake", "unique event -> run created p50", med(ours) * 1000, "ms", "", f"{m} events"),
        Row("intake", "unique event -> run created p95", pct(ours, 95) * 1000, "ms", "", f"{m} events"),
        Row("intake", "raw create_flow_run_from_deployment p50", med(raw) * 1000, "ms", "", "same server, same run"),
        Row(
            "intake", "raw create_flow_run_from_deployment p95", pct(raw, 95) * 1000, "ms", "", "same server, same run"
        ),
    ]
    emit(rows, a.json)


if __name__ == "__main__":
    main()

"""Console inbox: what waits for a user, over a large decision log and many paused promotions.

Run by hand: ``.venv/bin/python bench/inbox_bench.py [--records 1000000] [--pending 1000]`` (also part
of ``make bench``); ``--smoke``: a log of 2,000 records, 10 paused promotions, 3 repetitions.

* The log: N sealed records built in bulk (``audit_bench.build``: deferrals, a signed PM approval every
  100th), then, through the service path, one ``TECH_GATE_PASS`` with its gate report and figures per
  paused promotion (``services.promotion.record_tech``, as the promotion run records it).
* Prefect: the ephemeral test server with a ``promotion/promotion`` deployment and P flow runs of it in
  state ``Paused`` with the pause key the promotion uses (``risk-approval-<hex>``).
* Timed, as ``GET /inbox`` calls its ports (``releasegate.console_ports``) for a RISK approver: the
  governed approvers config (``GovernedDirectory.config``), then the first page of what waits for her
  roles with the count of all of them (``PrefectApprovalDesk.page``: the paused runs as last read from
  Prefect while the count of paused runs and the log's head are unchanged, the 50 on the page read
  again from Prefect and restored from the log). Templates and charts are not in it. Timed again with
  the kept read dropped before each request (``forget``): every paused run read from Prefect.
* Also timed: every waiting promotion restored (``PrefectApprovalDesk.pending``, what a reader's
  listing and ``releasegate awaiting`` build), and the read of the paused runs from Prefect alone
  (``awaiting_approval``).
"""

import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Row, args, emit, govern, isolated_home, measure, med, pct  # noqa: E402

MODEL = "credit"


def _options(p) -> None:
    p.add_argument("--records", type=int, default=1_000_000, help="decisions in the log")
    p.add_argument("--pending", type=int, default=1_000, help="paused promotions waiting for RISK")


def seed_log(n: int, run_ids: list[str]) -> None:
    """N records in bulk, then one TECH_GATE_PASS per paused run through the service path."""
    from audit_bench import build

    from releasegate import bootstrap
    from releasegate.policy.gates import GateReport, PromotionOutcome

    build(bootstrap.settings().resolved_database_url, n)
    for i, run_id in enumerate(run_ids):
        report = GateReport(
            model=MODEL,
            candidate_version=str(i + 2),
            champion_version="1",
            gates=[],
            outcome=PromotionOutcome.promote,
            measures_plan=[],
            evaluated_at=datetime(2026, 12, 1, tzinfo=UTC),
        )
        figures = {"kpi": {"name": "auc", "candidate": 0.81, "champion": 0.78, "required_delta": 0.02}}
        from releasegate.services.promotion import record_tech

        record_tech(bootstrap.app(), run_id, report, f"artifact:{uuid.uuid4()}", "ab" * 32, figures)


def seed_prefect(count: int) -> list[str]:
    """A ``promotion/promotion`` deployment and ``count`` runs of it paused for RISK; their ids."""
    from prefect import get_client
    from prefect.states import Paused

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("promotion")
        dep = client.create_deployment(flow_id=flow_id, name="promotion")
        ids = []
        for i in range(count):
            fr = client.create_flow_run_from_deployment(
                dep,
                parameters={"model_name": MODEL, "candidate_version": str(i + 2), "requested_by": "ml-engineer"},
                state=Paused(pause_key=f"risk-approval-{uuid.uuid4().hex}"),
            )
            ids.append(str(fr.id))
    return ids


def main() -> None:
    a = args(__doc__.splitlines()[0], _options)
    records, pending = (2_000, 10) if a.smoke else (a.records, a.pending)
    repeats = a.repeats or (3 if a.smoke else 20)
    home = isolated_home()
    govern(home, MODEL)
    import os

    from audit_bench import KEY

    os.environ["RELEASEGATE_SERVICE_KEY"] = KEY.hex()  # the key the bulk build sealed with
    from releasegate.testing.approval_driver import demo_approvers_file

    os.environ["RELEASEGATE_APPROVERS"] = str(demo_approvers_file(home))
    from prefect.testing.utilities import prefect_test_harness

    from releasegate import bootstrap
    from releasegate.adapters.prefect_manual import awaiting_approval
    from releasegate.console.app import PAGE_SIZE
    from releasegate.console_ports import PendingApproval
    from releasegate.policy.handshake import Role
    from releasegate.services.approval_desk import GovernedDirectory

    with prefect_test_harness(server_startup_timeout=120):
        t0 = time.perf_counter()
        run_ids = seed_prefect(pending)
        seed_log(records, run_ids)
        seeded = time.perf_counter() - t0
        app = bootstrap.app()
        directory = GovernedDirectory(app)
        desk = bootstrap.approval_desk(app, directory.config)
        user = "risk-carla"
        held: list[PendingApproval] = []
        total = [0]

        def inbox() -> None:
            config = directory.config()
            mine = [r for r, names in config.allow_lists().items() if user in names]
            held[:], total[0] = desk.page(mine, 0, PAGE_SIZE)

        times = measure(inbox, repeats, warmup=1)

        def cold() -> None:
            desk.forget()
            inbox()

        cold_times = measure(cold, repeats, warmup=0)
        assert held and all(i.awaiting is Role.risk and i.handshake.tech_pass for i in held), held[:1]
        assert total[0] == pending, (total[0], pending)
        everything: list[PendingApproval] = []
        whole = measure(lambda: everything.__setitem__(slice(None), desk.pending()), max(3, repeats // 4), warmup=0)
        assert len(everything) == pending and all(i.handshake.tech_pass for i in everything)
        prefect_read = measure(awaiting_approval, repeats, warmup=0)
    note = (
        f"{records:,} decisions, {pending:,} paused runs; page 1: {len(held)} items of {total[0]:,} counted; "
        f"median of {repeats}"
    )
    rows = [
        Row("inbox", "inbox query (p50)", med(times) * 1000, "ms", "", note),
        Row("inbox", "inbox query (p95)", pct(times, 95) * 1000, "ms", "<= 200 ms", note),
        Row("inbox", "inbox query, every run read (p50)", med(cold_times) * 1000, "ms", "", "after a change"),
        Row("inbox", "inbox query, every run read (p95)", pct(cold_times, 95) * 1000, "ms", "", "after a change"),
        Row("inbox", "paused runs read from Prefect (p50)", med(prefect_read) * 1000, "ms", "", "awaiting_approval"),
        Row("inbox", "every waiting item restored (p50)", med(whole) * 1000, "ms", "", f"{len(everything):,} items"),
        Row("inbox", "seed (log + Prefect)", seeded, "s", "", "not part of the query"),
    ]
    emit(rows, a.json)


if __name__ == "__main__":
    main()

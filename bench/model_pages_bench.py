"""Console model pages: the inventory and a model page over 1 M decisions and 100 governed models.

Run by hand: ``.venv/bin/python bench/model_pages_bench.py [--records 1000000] [--models 100] [--days 120]``
(also part of ``make bench``); ``--smoke``: 2,000 records, 5 models of 15 business dates, 3 repetitions.

* The log (SQLite, the home's): N sealed records in bulk (``audit_bench.build``: deferrals, and every
  100th a signed PM approval of ``credit``: 10,000 of them at 1 M), then through the service path each
  model's history (``releasegate.testing.model_history``: a retrain and promotion, one EOD verdict with
  its measures a business date, a drift spike and its retrain and promotion, a KPI drop and its
  rollback, a held promotion and an exception), written by 8 threads (group commit).
* The manifest: the 100 models (``m000``...), each with an EOD schedule.
* Timed, through the console (FastAPI ``TestClient``, signed in with a passkey as an auditor): ``GET
  /models`` (the inventory of the 100 models) and ``GET /models/{name}`` (a model page with its six
  charts, cycling through the models): the whole request, service, templates and SVG. The registry is
  not asked (``champion_now`` unset: no MLflow in the bench).
* Reference, in the same run: the model page served from a page read once (the charts and templates
  alone, no query), and the page of ``credit``, named by the bulk's 10,000 approvals (its timeline
  reads only the newest 200).
"""

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Row, args, emit, isolated_home, measure, med, pct  # noqa: E402


def _options(p) -> None:
    p.add_argument("--records", type=int, default=1_000_000, help="decisions in the log (bulk plus histories)")
    p.add_argument("--models", type=int, default=100, help="governed models")
    p.add_argument("--days", type=int, default=120, help="business dates of EOD verdicts per model")
    p.add_argument(
        "--log", help="measure over this log (SQLAlchemy URL) that an earlier run seeded, instead of seeding one"
    )


def main() -> None:
    a = args(__doc__.splitlines()[0], _options)
    records, models, days = (2_000, 5, 15) if a.smoke else (a.records, a.models, a.days)
    repeats = a.repeats or (3 if a.smoke else 40)
    home = isolated_home()
    from audit_bench import KEY, build

    from releasegate.policy.approvers import ApproverConfig
    from releasegate.policy.models import ModelSpec
    from releasegate.services.halt import why_halted
    from releasegate.services.model_pages import ModelPages
    from releasegate.store.trust import SealedDecisionLog
    from releasegate.testing.model_history import seed_model
    from tests.support.console import rig

    url = f"sqlite:///{home / 'decisions.db'}"
    names = [f"m{i:03d}" for i in range(models)]
    t0 = time.perf_counter()
    build_n = 0
    if a.log:
        url = a.log
        log = SealedDecisionLog(url, key_loader=lambda: KEY)
    else:
        probe = SealedDecisionLog(f"sqlite:///{home / 'probe.db'}", key_loader=lambda: KEY)
        seed_model(probe, "probe", date(2025, 1, 1), days)  # how many records one history writes
        build_n = max(0, records - probe.count() * models)
        if build_n:
            build(url, build_n)
        log = SealedDecisionLog(url, key_loader=lambda: KEY)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: seed_model(log, n, date(2025, 1, 1), days, salt=int(n[1:])), names))
    seeded = time.perf_counter() - t0
    total = log.count()

    specs = [
        ModelSpec.model_validate(
            {
                "name": n,
                "primary_kpi": {"metric": "roc_auc"},
                "owners": [f"owner-{n}"],
                "risk_tier": "high" if i % 3 == 0 else "standard",
                "eod": {"cron": "0 22 * * 1-5", "timezone": "Europe/Berlin"},
            }
        )
        for i, n in enumerate(names)
    ]
    r = rig()
    service = ModelPages(
        log, specs=lambda: specs, config=ApproverConfig, clock=r.clock, halted=why_halted(log, r.clock)
    )
    console = r.client.app.state.console
    console.ports = replace(console.ports, models=service)
    assert r.sign_in("audit-ida").status_code == 200

    def get(url: str) -> None:
        got = r.client.get(url)
        assert got.status_code == 200, (url, got.status_code, got.text[-300:])

    inventory = measure(lambda: get("/models"), repeats, warmup=1)
    turn = iter(range(10**9))
    pages = measure(lambda: get(f"/models/{names[next(turn) % len(names)]}"), repeats, warmup=1)
    page = service.page(names[0])
    assert page is not None and len(page.days) == max(days, 12) and len(page.champion_history) == 3
    kept = replace(service)
    kept.page = lambda name: page  # type: ignore[method-assign]
    console.ports = replace(console.ports, models=kept)
    drawn = measure(lambda: get(f"/models/{names[0]}"), repeats, warmup=1)
    console.ports = replace(console.ports, models=service)
    credit = measure(lambda: get("/models/credit"), max(3, repeats // 4), warmup=1) if build_n or a.log else []

    note = f"{total:,} decisions, {models} models x {max(days, 12)} business dates; {repeats} requests"
    rows = [
        Row("model pages", "GET /models (p50)", med(inventory) * 1000, "ms", "", note),
        Row("model pages", "GET /models (p95)", pct(inventory, 95) * 1000, "ms", "<= 200 ms", note),
        Row("model pages", "GET /models/{name} (p50)", med(pages) * 1000, "ms", "", "cycling through the models"),
        Row("model pages", "GET /models/{name} (p95)", pct(pages, 95) * 1000, "ms", "<= 200 ms", "six charts each"),
        Row("model pages", "reference: page drawn, no query (p50)", med(drawn) * 1000, "ms", "", "templates + SVG"),
    ]
    if credit:
        rows.append(
            Row(
                "model pages",
                "GET /models/credit (p50)",
                med(credit) * 1000,
                "ms",
                "",
                "named by the bulk's approvals (every 100th record)",
            )
        )
    if not a.log:
        rows.append(Row("model pages", "seed", seeded, "s", "", "not part of the requests"))
    emit(rows, a.json)


if __name__ == "__main__":
    main()

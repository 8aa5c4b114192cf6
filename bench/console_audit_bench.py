"""Console audit page: what ``GET /audit`` reads, what ``POST /audit/verify`` walks and what
``GET /audit/export`` streams, over a large decision log.

Run by hand: ``.venv/bin/python bench/console_audit_bench.py [--records 200000]``; ``--smoke`` (run by
``bench/run_all.py --smoke`` in ``make test``): 2,000 records, the same steps. The log is N sealed
records built in bulk (``audit_bench.build``) in SQLite under a throw-away home, with 10 signed
checkpoints; timed through ``services.audit_desk.LogAuditDesk`` (the console's real port):

* ``overview``: the head, the 10 newest checkpoints each checked against the log, the newest recorded
  verification and the model versions of the newest promotions (what the page shows);
* a verification as the page starts it (the chain walk and the ``decision_index`` check), to its record;
* the export, every line read (what the download streams), and the peak memory of its first 50,000
  lines (tracemalloc, a second pass: it slows the reading ten-fold, so it is not timed).
"""

import argparse
import itertools
import os
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=200_000)
    p.add_argument("--smoke", action="store_true", help="2,000 records: the steps run, nothing to read into")
    a = p.parse_args()
    n = 2_000 if a.smoke else a.records
    home = Path(tempfile.mkdtemp(prefix="console-audit-bench-"))
    os.environ["RELEASEGATE_HOME"] = str(home)
    from audit_bench import KEY, build  # noqa: E402

    os.environ["RELEASEGATE_SERVICE_KEY"] = KEY.hex()
    url = f"sqlite:///{home / 'decisions.db'}"
    os.environ["RELEASEGATE_DATABASE_URL"] = url
    t0 = time.perf_counter()
    build(url, n)
    print(f"built {n:,} records in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from releasegate import bootstrap
    from releasegate.clock import FixedClock
    from releasegate.services.audit_desk import LogAuditDesk
    from releasegate.store.checkpoints import make_checkpoint, write_checkpoint

    log = bootstrap.decision_log()
    key = Ed25519PrivateKey.generate()
    folder = home / "checkpoints"
    for i in range(10):
        write_checkpoint(make_checkpoint(log, key, datetime(2026, 12, 1, tzinfo=UTC) + timedelta(hours=i)), folder)
    desk = LogAuditDesk(log, FixedClock(datetime(2026, 12, 2, tzinfo=UTC)), folder, key.public_key())

    t0 = time.perf_counter()
    o = desk.overview()
    overview = time.perf_counter() - t0
    assert o.records == n and len(o.checkpoints) == 10 and not any(c.problem for c in o.checkpoints)

    t0 = time.perf_counter()
    desk.start_verify("bench")
    while desk.overview(0).verify.state == "running":
        time.sleep(0.2)
    verify = time.perf_counter() - t0
    v = desk.overview(0).verify
    assert v.state == "intact", v

    t0 = time.perf_counter()
    lines = sum(1 for _ in desk.export_lines())
    export = time.perf_counter() - t0
    tracemalloc.start()  # a second pass, its first 50,000 lines: the memory one export holds
    sum(1 for _ in itertools.islice(desk.export_lines(), 50_000))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print("| records | overview (page) | verify (chain + index, recorded) | export, every line | export peak memory |")
    print(
        f"| {n:,} | {overview:.3f} s | {verify:.1f} s (walk {v.seconds} s) | {export:.1f} s ({lines:,} lines) "
        f"| {peak / 2**20:.1f} MiB |"
    )


if __name__ == "__main__":
    main()

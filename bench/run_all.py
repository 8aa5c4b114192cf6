"""``make bench``: run every ``bench/*_bench.py`` and ``releasegate simulate``, print one table.

Each bench runs in its own process (its own ephemeral Prefect server where it needs one) and appends
its rows as JSON lines; this script prints them as one table with the machine and versions, and with
``--markdown PATH`` appends the same as a dated Markdown section to PATH (``bench/RESULTS.md`` keeps
every run with its reading: earlier sections are never rewritten).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import Row, print_table  # noqa: E402


def machine() -> dict:
    mem = ""
    try:
        kb = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except Exception:
        pass
    versions = {}
    for pkg in ("prefect", "mlflow", "numpy", "scikit-learn", "pydantic", "sqlalchemy"):
        try:
            versions[pkg] = version(pkg)
        except Exception:
            versions[pkg] = "-"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{os.cpu_count()} cores ({platform.machine()})",
        "memory": mem,
        "python": platform.python_version(),
        **versions,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--markdown", type=Path, help="also append the results as a dated Markdown section to this file")
    p.add_argument("--only", nargs="*", help="bench names to run (e.g. psi capacity)")
    a = p.parse_args()
    scripts = sorted(HERE.glob("*_bench.py"))
    if a.only:
        scripts = [s for s in scripts if s.stem.removesuffix("_bench") in a.only]
    out = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    failed = []
    for s in scripts:
        t0 = time.perf_counter()
        print(f"== {s.name} ...", flush=True)
        rc = subprocess.run([sys.executable, str(s), "--json", str(out)], env=env, capture_output=True, text=True)
        print(f"   {'ok' if rc.returncode == 0 else 'FAILED'} in {time.perf_counter() - t0:.0f} s", flush=True)
        if rc.returncode:
            failed.append(s.name)
            print(rc.stdout[-2000:], rc.stderr[-3000:], sep="\n")
    rows = [Row(**json.loads(line)) for line in out.read_text().splitlines() if line.strip()]
    sim = subprocess.run(
        [sys.executable, "-m", "releasegate", "simulate", "--days", "7", "--deployments", "200"]
        + ["--workloads", "all", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    m = machine()
    print()
    print(" | ".join(f"{k}: {v}" for k, v in m.items()))
    print()
    print_table(rows)
    report = json.loads(sim.stdout) if sim.returncode == 0 else None
    if report:
        print()
        print(simulation_markdown(report))
    else:
        failed.append("simulate")
        print(sim.stderr[-2000:])
    if a.markdown:
        head = "" if a.markdown.exists() else "# Benchmark results\n"
        section = f"\n## make bench, {m['date']}\n\n" + markdown(m, rows, report)
        with a.markdown.open("a") as f:
            f.write(head + section)
        print(f"\nappended to {a.markdown}: add the reading under its new section")
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        sys.exit(1)


def simulation_markdown(reports: list[dict]) -> str:
    """The four workloads: native FIFO, the two gateway rules and the lower bound, side by side (the rows
    ``releasegate simulate --workloads all`` prints)."""
    from releasegate.tools.sim_report import WORKLOAD_COLUMNS, workload_rows
    from releasegate.tools.simulate import SimReport

    lines = ["| " + " | ".join(WORKLOAD_COLUMNS) + " |", "|" + "---|" * len(WORKLOAD_COLUMNS)]
    for r in reports:
        lines += ["| " + " | ".join(row) + " |" for row in workload_rows(SimReport.model_validate(r))]
    return "\n".join(lines)


def markdown(m: dict, rows: list[Row], sim: dict | None) -> str:
    out = ["| " + " | ".join(m) + " |", "|" + "---|" * len(m), "| " + " | ".join(str(v) for v in m.values()) + " |", ""]
    out += ["| bench | metric | value | unit | goal | note |", "|---|---|---|---|---|---|"]
    for r in rows:
        v = "n/a" if r.value != r.value else (f"{r.value:,.0f}" if r.value >= 100 else f"{r.value:.4g}")
        out.append(f"| {r.bench} | {r.metric.strip()} | {v} | {r.unit} | {r.goal} | {r.note} |")
    if sim:
        out += ["", simulation_markdown(sim)]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()

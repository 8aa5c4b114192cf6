"""``make bench``: run every ``bench/*_bench.py`` and ``releasegate simulate``, print one table.

Each bench runs in its own process (its own ephemeral Prefect server where it needs one) and appends
its rows as JSON lines; this script prints them as one table with the machine and versions, and with
``--markdown PATH`` appends the same as a dated Markdown section to PATH (``bench/RESULTS.md`` keeps
every run with its reading: earlier sections are never rewritten).

``--smoke`` (``make bench-smoke``, part of ``make test``) runs every bench with its ``--smoke`` (tiny
sizes, offline) instead, one line per bench, the output of a failed one shown: a bench that no longer
runs, or that has no smoke mode, fails the tests. No table, no simulation.
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

# A bench's own arguments next to --smoke (the capacity plan: one workload is enough to see it run).
SMOKE_ARGS = {"plan_bench": ["--workloads", "default"]}


def machine() -> dict:
    mem = ""
    try:
        kb = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except Exception:
        pass
    model = ""
    try:  # the CPU model: figures of one 2-core machine are not another's
        model = next(line for line in open("/proc/cpuinfo") if line.startswith("model name")).split(":", 1)[1].strip()
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
        "cpu": f"{os.cpu_count()} cores ({model or platform.machine()})",
        "memory": mem,
        "load": "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg()),  # 1/5/15 min: was the machine busy?
        "python": platform.python_version(),
        **versions,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--markdown", type=Path, help="also append the results as a dated Markdown section to this file")
    p.add_argument("--only", nargs="*", help="bench names to run (e.g. psi capacity)")
    p.add_argument("--smoke", action="store_true", help="every bench's smoke mode: does each still run?")
    a = p.parse_args()
    scripts = sorted(HERE.glob("*_bench.py"))
    if a.only:
        scripts = [s for s in scripts if s.stem.removesuffix("_bench") in a.only]
    if a.smoke:
        sys.exit(smoke(scripts))
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


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (a bench and the servers it started): the
    smoke's cost whatever else the machine runs."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def smoke(scripts: list[Path]) -> int:
    """Each bench with ``--smoke`` in its own process; 1 when any failed."""
    offline = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    env = {**os.environ, **offline}
    failed = []
    for s in scripts:
        t0, cpu0 = time.perf_counter(), _children_cpu()
        cmd = [sys.executable, str(s), "--smoke", *SMOKE_ARGS.get(s.stem, [])]
        rc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        print(f"bench smoke {s.stem}: {'ok' if rc.returncode == 0 else 'FAILED'} in {wall:.0f} s (cpu {cpu:.0f} s)")
        if rc.returncode:
            failed.append(s.stem)
            print(rc.stdout[-2000:], rc.stderr[-4000:], sep="\n")
    if failed:
        print(f"bench smoke failed: {', '.join(failed)}")
    return 1 if failed else 0


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

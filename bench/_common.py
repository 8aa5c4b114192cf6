"""Shared bench helpers: an isolated home, timing with warm-up and medians, one table format.

Every bench prints its own table; with ``--json PATH`` it also appends its rows as JSON lines, which
``bench/run_all.py`` (``make bench``) collects into one table. ``--smoke`` runs a bench on tiny sizes
in seconds, offline (``make bench-smoke``, part of ``make test``): its figures mean nothing, but a bench
that no longer runs fails the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    bench: str
    metric: str
    value: float
    unit: str
    goal: str = ""
    note: str = ""


def args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    # "resolve": a bench that defines its own --smoke (drift_bench.py) keeps its own help
    p = argparse.ArgumentParser(description=description, conflict_handler="resolve")
    p.add_argument("--json", type=Path, help="append the rows as JSON lines to this file")
    p.add_argument("--repeats", type=int, default=None, help="override the number of measured repetitions")
    p.add_argument(
        "--smoke", action="store_true", help="tiny sizes, seconds: a check that the bench still runs (make test)"
    )
    if extra is not None:
        extra(p)  # a bench's own options
    return p.parse_args()


def isolated_home() -> Path:
    """A throw-away RELEASEGATE_HOME (SQLite decision log and MLflow) and offline settings."""
    home = Path(tempfile.mkdtemp(prefix="rg-bench-"))
    os.environ["RELEASEGATE_HOME"] = str(home)
    os.environ.pop("RELEASEGATE_DATABASE_URL", None)
    os.environ.pop("RELEASEGATE_MLFLOW_TRACKING_URI", None)
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # MLflow's own: the home's store in governed runs
        os.environ.pop(var, None)
    os.environ.setdefault("RELEASEGATE_PROJECT_DIR", str(ROOT))
    for k, v in {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }.items():
        os.environ.setdefault(k, v)
    return home


def govern(home: Path, *names: str) -> Path:
    """A model manifest (``$RELEASEGATE_MODELS``) naming each bench model with the shipped ``credit``
    entry (its ``current_inputs``, labels, KPI and task), as a team governs its own model: the drift
    gate and a rollback's verification on the business date read the model's inputs from it."""
    import yaml

    shipped = yaml.safe_load((ROOT / "blocks" / "models.yaml").read_text())["models"]
    credit = next(m for m in shipped if m["name"] == "credit")
    path = home / "models.yaml"
    path.write_text(yaml.safe_dump({"models": [{**credit, "name": n} for n in names]}, sort_keys=False))
    os.environ["RELEASEGATE_MODELS"] = str(path)
    return path


def measure(fn: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def print_table(rows: list[Row]) -> None:
    head = ("bench", "metric", "value", "unit", "goal", "note")
    body = [(r.bench, r.metric, _fmt(r.value), r.unit, r.goal, r.note) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*head))
    print(line.format(*("-" * w for w in widths)))
    for b in body:
        print(line.format(*b))


def _fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.4f}"


def emit(rows: list[Row], json_path: Path | None) -> None:
    print_table(rows)
    if json_path:
        with json_path.open("a") as f:
            for r in rows:
                f.write(json.dumps(asdict(r)) + "\n")

"""``releasegate demo`` (``make demo``): the whole lifecycle on embedded defaults.

Brings the platform up and runs the demo of every installed example project (``examples/credit``: a
classifier on generated data; ``examples/diabetes``: a regression on Parquet files), each through
promotion, EOD scoring, retrain, drift, rollback and backfill; then one summary table per model (step,
outcome, reason code, decision id, seconds) and where to look next. ``--json`` prints the same as JSON.
The harness is ``tools/lifecycle.py``, the steps are the examples' own; this module only prints.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table


def run_demo(console: Console, as_json: bool = False) -> int:
    home = Path(os.environ.get("RELEASEGATE_HOME", ".releasegate/demo")).resolve()
    from releasegate.tools.lifecycle import as_json as to_json
    from releasegate.tools.lifecycle import prepare_environment, run_lifecycle, where_next

    prepare_environment(home)
    err = Console(stderr=True)

    def progress(s) -> None:
        mark = "[green]ok[/]" if s.ok else "[red]FAILED[/]"
        target = err if as_json else console
        who = f"[cyan]{s.model}[/] " if s.model else ""
        target.print(
            f"{mark} {who}[bold]{s.step}[/] ({s.what}) [dim]{s.seconds:.1f} s[/]: "
            f"{s.outcome} {s.reason_code} {s.detail}"
        )

    (err if as_json else console).print(f"[bold]releasegate demo[/] in {home} (ephemeral Prefect, SQLite MLflow)")
    steps = run_lifecycle(progress)
    doc = to_json(steps, home)
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0 if doc["ok"] else 1
    groups = list(dict.fromkeys(s.model for s in steps))  # the platform's steps, then one table per model
    for model in groups:
        mine = [s for s in steps if s.model == model]
        title = f"model {model}" if model else "platform"
        t = Table(title=f"releasegate demo, {title}: {sum(s.seconds for s in mine):.0f} s")
        for col in ("#", "step", "outcome", "reason code", "decision id", "s"):
            t.add_column(col, overflow="fold", no_wrap=col in ("reason code", "decision id"))
        for i, s in enumerate(mine, 1):
            style = "" if s.ok else "red"
            t.add_row(str(i), s.step, s.outcome, s.reason_code, s.decision_id[:8], f"{s.seconds:.1f}", style=style)
        console.print(t)
    console.print("[bold]Where to look next[/]")
    for line in where_next(home):
        console.print(f"  {line}")
    if not doc["ok"]:
        failed = next(s for s in steps if not s.ok)
        console.print(f"[red]demo failed at '{failed.step}': {failed.detail}[/]")
    return 0 if doc["ok"] else 1

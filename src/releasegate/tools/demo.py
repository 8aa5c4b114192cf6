"""``releasegate demo`` (``make demo``): the whole lifecycle on embedded defaults.

Trains v1 and promotes it (approvals by the demo approver identities), runs EOD scoring, shows a
backfill deferred with PRIORITY_CONFLICT while EOD runs, a registry event firing a retrain, the v2
candidate gated, injected drift and a rollback; then a summary table (step, outcome, reason code,
decision id, seconds) and where to look next. ``--json`` prints the same as JSON. The steps live in
``tools/lifecycle.py``; this module only prints.
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
        target.print(
            f"{mark} [bold]{s.step}[/] ({s.what}) [dim]{s.seconds:.1f} s[/]: {s.outcome} {s.reason_code} {s.detail}"
        )

    (err if as_json else console).print(f"[bold]releasegate demo[/] in {home} (ephemeral Prefect, SQLite MLflow)")
    steps = run_lifecycle(progress)
    doc = to_json(steps, home)
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0 if doc["ok"] else 1
    t = Table(title=f"releasegate demo: {doc['seconds']:.0f} s")
    for col in ("#", "step", "outcome", "reason code", "decision id", "s"):
        t.add_column(col, overflow="fold", no_wrap=col in ("reason code", "decision id"))
    for i, s in enumerate(steps, 1):
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

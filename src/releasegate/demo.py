"""``releasegate demo``: the smallest real end-to-end run, driven through the real CLI.

Each step runs ``releasegate …`` as its own process against the embedded defaults (SQLite decision
log in $RELEASEGATE_HOME, ephemeral Prefect server), shows its output and ends in a summary table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table


@dataclass
class Step:
    title: str
    args: list[str]
    expect_ok: bool = True
    rc: int | None = None
    seconds: float = 0.0


def _cli() -> list[str]:
    exe = shutil.which("releasegate")
    return [exe] if exe else [sys.executable, "-m", "releasegate"]


def run_demo(console: Console) -> int:
    expiry = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    steps = [
        Step("migrate the decision log", ["db", "upgrade"]),
        Step("activation block: runtime policies in prefect.yaml", ["policy", "check", "prefect.yaml"]),
        Step(
            "an override without exception_expiry is refused",
            [
                "decisions",
                "add",
                "--kind",
                "override",
                "--outcome",
                "override",
                "--rationale",
                "demo: start backfill during freeze",
                "--subject",
                "deployment:backfill",
                "--by",
                "demo-operator",
                "--details",
                '{"ticket_ref": "CHG-1001"}',
            ],
            expect_ok=False,
        ),
        Step(
            "the same override with an expiry is recorded",
            [
                "decisions",
                "add",
                "--kind",
                "override",
                "--outcome",
                "override",
                "--rationale",
                "demo: start backfill during freeze",
                "--subject",
                "deployment:backfill",
                "--by",
                "demo-operator",
                "--exception-expiry",
                expiry,
                "--details",
                '{"ticket_ref": "CHG-1001"}',
            ],
        ),
        Step(
            "governed flow run on the ephemeral Prefect server",
            ["govern", "--requested-by", "demo-operator", "--reason-code", "governance_run"],
        ),
        Step(
            "a manual prod run without ticket and approval is refused",
            ["govern", "--requested-by", "demo-operator", "--environment", "prod"],
            expect_ok=False,
        ),
        Step("read the decisions back", ["decisions"]),
        Step("verify the hash chain", ["audit", "verify"]),
    ]
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "COLUMNS": os.environ.get("COLUMNS", "140")}
    failed = False
    for i, step in enumerate(steps, 1):
        console.rule(f"[bold]{i}. {step.title}")
        console.print("$ releasegate " + " ".join(step.args), style="dim")
        t0 = time.perf_counter()
        proc = subprocess.run(_cli() + step.args, env=env, capture_output=True, text=True)
        step.seconds = time.perf_counter() - t0
        step.rc = proc.returncode
        out = (proc.stdout + proc.stderr).strip()
        # Prefect's engine logs are long; keep the lines that say what happened.
        lines = [ln for ln in out.splitlines() if "prefect.flow_runs" not in ln or "releasegate" in ln.lower()]
        console.file.write("\n".join(lines[-40:]) + "\n")  # as the child printed it, not re-wrapped
        console.file.flush()
        if (proc.returncode == 0) != step.expect_ok:
            failed = True
            console.print(f"[red]unexpected exit code {proc.returncode}[/red]")

    summary = Table(title="releasegate demo")
    for col in ("#", "step", "expected", "exit", "seconds"):
        summary.add_column(col)
    for i, s in enumerate(steps, 1):
        ok = (s.rc == 0) == s.expect_ok
        summary.add_row(
            str(i),
            s.title,
            "success" if s.expect_ok else "refusal",
            f"[{'green' if ok else 'red'}]{s.rc}[/]",
            f"{s.seconds:.1f}",
        )
    console.print(summary)
    home = os.environ.get("RELEASEGATE_HOME", ".releasegate")
    console.print(f"Decision log: {home}/releasegate.db — try `RELEASEGATE_HOME={home} releasegate decisions --json`.")
    return 1 if failed else 0

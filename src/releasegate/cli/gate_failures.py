"""`releasegate gate-failures` (list) and `releasegate gate-failures ack`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from releasegate.cli._common import console, exit_refused

gate_failures_app = typer.Typer(help="Promotion gate failures and their acknowledgement.", invoke_without_command=True)


@gate_failures_app.callback()
def gate_failures_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Gate failures of the last 7 days; unacknowledged ones become a P1 incident after 30 minutes."""
    if ctx.invoked_subcommand is not None:
        return
    from releasegate import bootstrap
    from releasegate.services.gate_failures import open_gate_failures

    failures, acked, escalated = open_gate_failures(bootstrap.app())
    rows = [
        f | {"acknowledged": f["decision_id"] in acked, "incident": f["decision_id"] in escalated} for f in failures
    ]
    if as_json:
        typer.echo(json.dumps(rows, default=str, indent=2))
        return
    table = Table(title=f"gate failures ({len(rows)})")
    for col in ("decision_id", "at (UTC)", "model", "version", "outcome", "acknowledged", "incident"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["decision_id"],
            f"{r['at']:%Y-%m-%d %H:%M}",
            str(r["model_name"]),
            str(r["candidate_version"]),
            str(r["outcome"]),
            "yes" if r["acknowledged"] else "NO",
            "P1" if r["incident"] else "",
        )
    console.print(table)


@gate_failures_app.command("ack")
def gate_failures_ack(
    decision_id: Annotated[str, typer.Argument(help="Decision id of the hold/reject.")],
    by: Annotated[str, typer.Option(help="Who acknowledges.")],
    note: Annotated[str, typer.Option(help="What happens next.")] = "",
) -> None:
    """Acknowledge a gate failure (stops its escalation to a P1 incident)."""
    from releasegate import bootstrap
    from releasegate.services.gate_failures import acknowledge

    if not by.strip():
        exit_refused("by", "required")
    try:
        did = acknowledge(bootstrap.app(), decision_id, by, note)
    except ValueError as exc:  # an unknown or already acknowledged id: bad input, exit 2
        exit_refused(str(exc), code=2)  # the whole message: "<field>: <rule>", or a DecisionRefused's own text
    console.print(f"gate failure {decision_id} acknowledged as decision {did}")

"""`releasegate deferrals` (list) and `releasegate deferrals override`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from releasegate.cli._common import console, exit_refused

if TYPE_CHECKING:
    from releasegate.store.scheduling_store import Deferral

deferrals_app = typer.Typer(help="Deferred runs: list, override.", invoke_without_command=True)


@deferrals_app.callback()
def deferrals_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Closed deferrals too.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List open deferrals: run, deployment, reason, since, next evaluation, predicted start, SLA state.

    A capacity deferral's predicted start is the one recorded with it (the runs queued before it counted,
    ``policy.start_prediction``), else when the reservation plan (or, for a run waiting behind a pool or
    queue cap, the running runs' expected ends) says it will be admitted: its next evaluation."""
    if ctx.invoked_subcommand is not None:
        return
    from releasegate import bootstrap
    from releasegate.policy.deferrals import WAKEABLE, sla_state

    now = bootstrap.clock().now()
    rows = bootstrap.scheduling_store().deferrals(None if all_ else "open")

    def predicted(r: Deferral) -> datetime | None:
        if r.reason_code not in WAKEABLE:
            return None
        return r.predicted_start_at or r.next_evaluation_at

    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        **r.__dict__,
                        "predicted_start_at": predicted(r),
                        "sla_now": sla_state(r.first_deferred_at, now).value,
                    }
                    for r in rows
                ],
                default=str,
                indent=2,
            )
        )
        return
    table = Table(title=f"{'all' if all_ else 'open'} deferrals ({len(rows)})")
    for col in (
        "flow run",
        "deployment",
        "reason",
        "since (UTC)",
        "waited",
        "next evaluation",
        "predicted start",
        "attempts",
        "SLA",
        "status",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        waited = int(((r.closed_at or now) - r.first_deferred_at).total_seconds() // 60)
        table.add_row(
            r.flow_run_id,
            r.deployment,
            r.reason_code,
            f"{r.first_deferred_at:%Y-%m-%d %H:%M}",
            f"{waited} min",
            f"{r.next_evaluation_at:%H:%M:%S}",
            f"{p:%H:%M:%S}" if (p := predicted(r)) is not None else "-",
            str(r.attempts),
            sla_state(r.first_deferred_at, r.closed_at or now).value,
            r.status,
        )
    console.print(table)


@deferrals_app.command("override")
def deferrals_override(
    run: Annotated[str, typer.Argument(help="Flow run id of the deferred run.")],
    ticket: Annotated[str | None, typer.Option(help="Change/incident ticket (required).")] = None,
    by: Annotated[str | None, typer.Option(help="Who grants the override (required).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (required).")] = None,
    expires_in_minutes: Annotated[int, typer.Option(help="Exception expiry.")] = 240,
    key: Annotated[
        Path | None, typer.Option("--key", help="Your private key (default <RELEASEGATE_KEY_DIR>/<--by>.pem).")
    ] = None,
) -> None:
    """Start a deferred run now; refused without a ticket, unless --by is on the `overrides` allow-list and
    signs with their pinned key; recorded as an override decision."""
    from datetime import timedelta

    from releasegate import bootstrap
    from releasegate.adapters.prefect_deferrals import OverrideRefused, override_deferral

    try:
        rec = override_deferral(
            bootstrap.app(), run, ticket, by or "", reason or "", timedelta(minutes=expires_in_minutes), key_file=key
        )
    except OverrideRefused as exc:  # names the refusal's decision (exc.decision_id)
        exit_refused(exc, code=2 if exc.field == "run" else 1)  # no open deferral for that run: bad input
    console.print(
        f"override recorded as decision {rec.decision_id}; run {run} scheduled to start now "
        f"(exception expires {rec.exception_expiry:%Y-%m-%d %H:%M} UTC)"
    )

"""`releasegate report`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from releasegate.cli._common import console


def report(
    since: Annotated[datetime | None, typer.Option(help="Start (UTC); default 7 days ago.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    publish: Annotated[bool, typer.Option(help="Publish as a Prefect markdown artifact.")] = True,
) -> None:
    """Scheduling KPIs: runs started, runtime-policy coverage, deferral durations vs the 30-min SLA."""
    from datetime import UTC, timedelta

    from releasegate import bootstrap
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_deferrals import kpi_report

    start = since.replace(tzinfo=since.tzinfo or UTC) if since else bootstrap.clock().now() - timedelta(days=7)
    rep = kpi_report(load_gateway_config(), start, publish=publish)
    if as_json:
        typer.echo(rep.model_dump_json(indent=2))
        return
    table = Table(title=f"releasegate KPIs since {start:%Y-%m-%d %H:%M} UTC")
    for col in ("KPI", "value", "target", "status"):
        table.add_column(col)
    for row in rep.rows():
        table.add_row(*row)
    console.print(table)

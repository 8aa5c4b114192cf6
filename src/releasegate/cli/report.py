"""`releasegate report`: the scheduling KPIs, or with ``--week`` the operational-risk review of a week."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

import typer
from rich.table import Table

from releasegate.cli._common import console, parse_time
from releasegate.errors import Refused


def report(
    since: Annotated[
        str | None, typer.Option(help="Start, ISO 8601 with offset (e.g. 2026-11-23T08:00:00Z); default 7 days ago.")
    ] = None,
    week: Annotated[
        str | None,
        typer.Option(
            help="A date (YYYY-MM-DD) in the ISO week to review: scheduled runs started (>= 99 %, below 98 % "
            "a P2 incident) and the frequently deferred deployments, as the sweeper records each Monday."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    publish: Annotated[bool, typer.Option(help="Publish as a Prefect markdown artifact.")] = True,
) -> None:
    """Scheduling KPIs: runs started, runtime-policy coverage, deferral durations vs the 30-min SLA."""
    from datetime import timedelta

    from releasegate import bootstrap
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_deferrals import kpi_report

    if week is not None:
        _week(week, as_json)
        return
    app = bootstrap.app()
    start = parse_time(since, "since") if since else app.clock.now() - timedelta(days=7)
    rep = kpi_report(app, load_gateway_config(), start, publish=publish)
    if as_json:
        typer.echo(rep.model_dump_json(indent=2))
        return
    table = Table(title=f"releasegate KPIs since {start:%Y-%m-%d %H:%M} UTC")
    for col in ("KPI", "value", "target", "status"):
        table.add_column(col)
    for row in rep.rows():
        table.add_row(*row)
    console.print(table)


def _week(text: str, as_json: bool) -> None:
    from releasegate import bootstrap
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_review import week_facts_reader
    from releasegate.services.operational_review import review_week

    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise Refused("week", f"{text!r} is not a date: give YYYY-MM-DD, any day of the week") from None
    config = load_gateway_config()
    now = bootstrap.clock().now()
    rev = review_week(
        week_facts_reader(config.pool_name, bootstrap.scheduling_store()),
        config.sla_alert_minutes,
        datetime.combine(day, time(12), tzinfo=UTC),
        now,
    )
    if as_json:
        typer.echo(rev.model_dump_json(indent=2))
        return
    if rev.week_end > now:
        console.print(f"[yellow]the week of {rev.week_start:%Y-%m-%d} has not ended: figures so far[/yellow]")
    console.print(rev.explanation())
    table = Table(title=f"Operational-risk review, week of {rev.week_start:%Y-%m-%d} (UTC)")
    table.add_column("deployment", no_wrap=True)  # a name cut short is a different name
    for col in ("scheduled", "started", "deferred", "open p95 min", "over SLA", "reasons", "risk"):
        table.add_column(col)
    for r in rev.rows:
        table.add_row(
            r.deployment,
            str(r.scheduled),
            str(r.started),
            f"{r.deferred_runs}" + (f" ({100 * r.deferred_share:.0f} %)" if r.deferred_share is not None else ""),
            "-" if r.open_minutes_p95 is None else f"{r.open_minutes_p95:.1f}",
            str(r.over_sla),
            ", ".join(f"{k} {v}" for k, v in sorted(r.reasons.items())) or "-",
            "FREQUENT" if r.frequent else "",
        )
    console.print(table)

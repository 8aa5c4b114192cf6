"""`releasegate registry watch | guard`."""

from __future__ import annotations

from typing import Annotated

import typer

from releasegate.cli._common import console

registry_app = typer.Typer(help="MLflow registry events.", no_args_is_help=True)


@registry_app.command("watch")
def registry_watch(
    once: Annotated[bool, typer.Option("--once/--loop", help="One poll, or poll forever.")] = True,
    interval: Annotated[int, typer.Option(help="Seconds between polls with --loop.")] = 60,
) -> None:
    """Poll the registry for new versions and staging-alias moves and send them as events."""
    import time as _time

    from releasegate import bootstrap
    from releasegate.adapters.registry_watch import watch_once

    while True:
        results = watch_once(bootstrap.app())
        for r in results:
            console.print(f"{r.status}: {r.deployment or '-'} {r.flow_run_id or ''} {r.reason or ''}")
        if not results:
            console.print("nothing new")
        if once:
            return
        _time.sleep(interval)


@registry_app.command("guard")
def registry_guard(
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Record and report a moved alias, do not move it back.")
    ] = False,
) -> None:
    """Compare champion/archive of every prod model with the decision log (what the registry watcher does
    every minute): a moved alias is a P1 incident record and event, moved back unless --report-only or
    RELEASEGATE_ALIAS_GUARD=report. Exit 1 when an alias was out of place."""
    from releasegate import bootstrap
    from releasegate.adapters.registry_watch import guard_prod_aliases

    results = guard_prod_aliases(bootstrap.app(), "report" if report_only else None)
    for g in results:
        console.print(f"{g.model}: {g.status} {g.aliases_after}")
        for f in g.findings:
            console.print(f"  {f} (incident {g.incident_decision or 'already recorded'})")
    if not results:
        console.print("no prod models, or RELEASEGATE_ALIAS_GUARD=off")
    if any(g.findings for g in results):
        raise typer.Exit(1)

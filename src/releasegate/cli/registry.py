"""`releasegate registry watch`."""

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

    from releasegate.adapters.registry_watch import watch_once

    while True:
        results = watch_once()
        for r in results:
            console.print(f"{r.status}: {r.deployment or '-'} {r.flow_run_id or ''} {r.reason or ''}")
        if not results:
            console.print("nothing new")
        if once:
            return
        _time.sleep(interval)

"""`releasegate events send`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from releasegate.cli._common import console, err, exit_refused, parse_json, read_input
from releasegate.errors import Refused

events_app = typer.Typer(help="Event intake.", no_args_is_help=True)


@events_app.command("send")
def events_send(
    source: Annotated[str, typer.Argument(help="JSON file with one event (or a list), or - for stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per event.")] = False,
) -> None:
    """Validate an event, dedupe it by deployment + idempotency_key, and start its run."""
    from releasegate import bootstrap
    from releasegate.adapters.prefect_runs import DeploymentMissing, send_event

    app = bootstrap.app()
    text = read_input(source, "source")  # a missing file: refused, exit 2 (cli.RefusingGroup)
    try:
        doc = parse_json(text, "source")
    except Refused as exc:  # recorded by intake (as not an object), refused as the bad input it is
        try:
            result = send_event(app, text)
        except DeploymentMissing:
            result = None
        where = f"{source}: " if source != "-" else ""
        exit_refused("source", f"{where}{exc.rule}", code=2, decision_id=result.decision_id if result else None)
    events = doc if isinstance(doc, list) else [doc]
    refused = 0
    for raw in events:
        try:
            result = send_event(app, raw)
        except DeploymentMissing as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        refused += result.status == "refused"
        if as_json:
            typer.echo(json.dumps(result.as_dict()))
        elif result.status == "refused":
            err.print(f"[red]refused[/red]: {result.reason} (decision {result.decision_id})")
        else:
            console.print(f"{result.status}: {result.deployment} flow run {result.flow_run_id}")
    if refused:
        raise typer.Exit(1)

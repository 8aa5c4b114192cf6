"""`releasegate artifact show KEY|ID`: a Prefect artifact (gate report, dossier, EOD summary) as a person
reads it: markdown rendered in the terminal, a table as a table, anything else as JSON."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from releasegate.cli._common import console, exit_refused

artifact_app = typer.Typer(help="Prefect artifacts: gate reports, dossiers, EOD summaries.", no_args_is_help=True)


@artifact_app.command("show")
def artifact_show(
    ref: Annotated[str, typer.Argument(help="Artifact key (its newest version) or id (also artifact:<id>).")],
    raw: Annotated[bool, typer.Option("--raw", help="Print the artifact's text as stored (markdown source).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Key, id, type, run and data as JSON.")] = False,
) -> None:
    """Print an artifact: its key, description and run, then its content (markdown rendered)."""
    from rich.markdown import Markdown
    from rich.table import Table

    from releasegate.adapters.prefect_manual import NoServer, StartRefused, read_artifact

    try:
        a = read_artifact(ref)
    except NoServer as exc:
        exit_refused("PREFECT_API_URL", str(exc), code=2)
    except StartRefused as exc:
        exit_refused(exc, code=2)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "id": a.id,
                    "key": a.key,
                    "type": a.type,
                    "description": a.description,
                    "flow_run_id": a.flow_run_id,
                    "created": a.created.isoformat() if a.created else None,
                    "data": a.data,
                },
                indent=2,
                default=str,
            )
        )
        return
    if raw:
        typer.echo(a.data if isinstance(a.data, str) else json.dumps(a.data, indent=2, default=str))
        return
    console.print(
        f"artifact {a.key or a.id} ({a.type}) of flow run {a.flow_run_id or '-'}: {a.description}",
        markup=False,
        highlight=False,
    )
    data = a.data
    if isinstance(data, str) and a.type == "table":  # Prefect stores a table artifact as JSON text
        try:
            data = json.loads(data)
        except ValueError:
            pass
    if isinstance(data, str):
        console.print(Markdown(data))
    elif isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        table = Table()
        columns = list(dict.fromkeys(k for r in data for k in r))
        for c in columns:
            table.add_column(str(c), overflow="fold")
        for r in data:
            table.add_row(*(str(r.get(c, "")) for c in columns))
        console.print(table)
    else:
        console.print_json(data=data, default=str)

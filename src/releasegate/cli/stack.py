"""`releasegate demo`, `releasegate up` and `releasegate down`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from releasegate.cli._common import console, err

STACK_HOME = Path("~/.releasegate/stack")


def demo(as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False) -> None:
    """The whole lifecycle on embedded defaults (see `make demo`): promote, EOD, deferral, retrain, rollback."""
    from releasegate.tools.demo import run_demo

    raise typer.Exit(run_demo(console, as_json))


def stack_up(
    home: Annotated[Path, typer.Option(help="State and logs of the stack.")] = STACK_HOME,
    prefect_port: Annotated[int, typer.Option(help="Prefect server (UI and API).")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="MLflow tracking and registry server.")] = 5000,
    webhook_port: Annotated[int, typer.Option(help="releasegate's MLflow webhook receiver.")] = 8765,
    console_port: Annotated[int, typer.Option(help="The governance console (http://localhost:PORT).")] = 4300,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="RELEASEGATE_PREFECT_DATABASE_URL",
            help="Prefect server database, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/prefect "
            "(default SQLite under --home).",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Workers on the releasegate pool. On a stack that is up: start again each whose process is "
            "gone and add the missing ones (docs/recover-a-worker.md).",
        ),
    ] = 1,
) -> None:
    """Start the local stack on loopback: Prefect server, MLflow server + webhook, deployments, the
    governance console, worker(s).
    On a stack that is already up, start only the workers that are not running."""
    from releasegate.bootstrap import project_root
    from releasegate.tools.stack import ensure_workers, up

    if (home.expanduser() / "stack.json").exists():
        try:
            info, actions = ensure_workers(
                home.expanduser(), project_root(), workers, say=lambda m: console.print(f"[dim]{m}[/]")
            )
        except RuntimeError as exc:
            err.print(f"[red]up failed:[/] {exc}")
            raise typer.Exit(1) from None
        console.print(f"[green]stack already up[/] in {info.home}; workers:")
        for name, action in actions.items():
            console.print(f"  {name:<16} {action}")
        return
    try:
        info = up(
            home.expanduser(),
            project_root(),
            prefect_port=prefect_port,
            mlflow_port=mlflow_port,
            webhook_port=webhook_port,
            console_port=console_port,
            database_url=database_url,
            workers=workers,
            say=lambda m: console.print(f"[dim]{m}[/]"),
        )
    except RuntimeError as exc:
        err.print(f"[red]up failed:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"[green]stack up[/] in {info.home} (logs in {info.home}/logs)")
    console.print(f"  Prefect UI   {info.prefect_ui}")
    console.print(f"  MLflow       {info.mlflow}")
    console.print(f"  webhook      {info.webhook}")
    console.print(f"  console      {info.console}/inbox  (approvers sign in with a passkey)")
    console.print(f"  talk to it:  source {info.home}/stack.env")
    console.print("  then: start 'governance-run' from the Prefect UI, or `releasegate govern --requested-by you`")


def stack_down(home: Annotated[Path, typer.Option(help="State and logs of the stack.")] = STACK_HOME) -> None:
    """Stop what `releasegate up` started (its logs stay)."""
    from releasegate.tools.stack import down

    stopped = down(home.expanduser())
    console.print(f"stopped: {', '.join(stopped)}" if stopped else f"no stack is up in {home}")

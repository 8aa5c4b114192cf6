"""`releasegate webhook serve`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from releasegate.cli._common import console, err

webhook_app_cli = typer.Typer(help="MLflow webhook receiver.", no_args_is_help=True)


@webhook_app_cli.command("serve")
def webhook_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
) -> None:
    """Receive MLflow webhooks at POST /webhooks/mlflow (secret: RELEASEGATE_WEBHOOK_SECRET)."""
    import uvicorn

    from releasegate import bootstrap
    from releasegate.adapters.webhook_app import create_app

    if not os.environ.get("RELEASEGATE_WEBHOOK_SECRET"):
        err.print("[red]error:[/red] set RELEASEGATE_WEBHOOK_SECRET to the secret given to MlflowClient.create_webhook")
        raise typer.Exit(2)
    console.print(f"releasegate webhook receiver on http://{host}:{port}/webhooks/mlflow")
    uvicorn.run(create_app(bootstrap.app), host=host, port=port, log_level="info")

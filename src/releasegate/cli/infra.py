"""`releasegate infra up`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from releasegate.cli._common import console

infra_app = typer.Typer(help="Prefect infrastructure: work pool, queues, caps.", no_args_is_help=True)


@infra_app.command("up")
def infra_up_cmd(
    policy_file: Annotated[
        Path | None, typer.Option(help="Capacity policy YAML (default blocks/capacity_policy.yaml).")
    ] = None,
    oncall_webhook: Annotated[
        str | None, typer.Option(help="URL the SLA automations notify (creates the releasegate-oncall block).")
    ] = None,
) -> None:
    """Create or update the work pool, queues, caps, capacity block and SLA automations, and make the MLflow
    store and the decision log ready (idempotent)."""
    from releasegate import bootstrap
    from releasegate.adapters import mlflow_registry
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import InfraChange, apply_automations, ensure_oncall_webhook, infra_up

    config = capacity_from_file(policy_file)
    changes = infra_up(config)
    # before any worker runs a flow: two runs must not race to create the store (mlflow_registry says why)
    changes.append(InfraChange("mlflow tracking store", "ready", mlflow_registry.ensure_tracking_store()))
    bootstrap.decision_log().count()  # the decision log's schema too (migrated on first use)
    changes.append(InfraChange("decision log", "ready", "schema at the newest migration"))
    if oncall_webhook:
        changes.append(ensure_oncall_webhook(oncall_webhook))
    changes += apply_automations(bootstrap.project_root() / "deployments" / "automations.yaml")
    table = Table(title="releasegate infra")
    for col in ("object", "action", "settings"):
        table.add_column(col, overflow="fold")
    for c in changes:
        table.add_row(c.what, c.action, c.detail)
    console.print(table)

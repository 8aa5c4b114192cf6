"""`releasegate infra up`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from releasegate.cli._common import console, err, exit_refused

infra_app = typer.Typer(help="Prefect infrastructure: work pool, queues, caps.", no_args_is_help=True)


def _capacity(policy_file: Path | None):
    """The capacity policy; run from a team's own folder (a prefect.yaml without blocks/), say to point
    RELEASEGATE_PROJECT_DIR at releasegate's project folder rather than only that the file is missing."""
    import os

    from releasegate.adapters.config import ConfigError, capacity_from_file, config_file

    try:
        return capacity_from_file(policy_file)
    except ConfigError as exc:
        named = policy_file is not None or any(
            os.environ.get(v) for v in ("RELEASEGATE_PROJECT_DIR", "RELEASEGATE_CAPACITY_POLICY")
        )
        if named or "cannot be read" not in exc.rule:
            raise
        path = config_file("capacity-policy")
        exit_refused(
            str(path),
            f"cannot be read: {path.parent.parent} is not releasegate's project folder (no blocks/ there); set "
            "RELEASEGATE_PROJECT_DIR to the folder holding releasegate's prefect.yaml and blocks/ (or run from "
            "it), or give --policy-file",
            code=2,
        )


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
    from releasegate.adapters.prefect_infra import InfraChange, apply_automations, ensure_oncall_webhook, infra_up

    config = _capacity(policy_file)
    changes = infra_up(config)
    # before any worker runs a flow: two runs must not race to create the store (mlflow_registry says why)
    changes.append(InfraChange("mlflow tracking store", "ready", mlflow_registry.ensure_tracking_store()))
    bootstrap.decision_log().count()  # the decision log's schema too (migrated on first use)
    changes.append(InfraChange("decision log", "ready", "schema at the newest migration"))
    changes.append(_governed_approvers())
    if oncall_webhook:
        changes.append(ensure_oncall_webhook(oncall_webhook))
    changes += apply_automations(bootstrap.project_root() / "deployments" / "automations.yaml")
    table = Table(title="releasegate infra")
    for col in ("object", "action", "settings"):
        table.add_column(col, overflow="fold")
    for c in changes:
        table.add_row(c.what, c.action, c.detail)
    console.print(table)
    from releasegate.cli.capacity import pool_warning

    if warning := pool_warning(config.pool_concurrency_limit):
        err.print(f"[yellow]warning:[/yellow] {warning}")


def _governed_approvers():
    """Trust the approvers config once (the first ``infra up``), or name the governed one in force."""
    from releasegate import bootstrap
    from releasegate.adapters.config import load
    from releasegate.adapters.prefect_infra import InfraChange
    from releasegate.services.approvers import governed_config, history, trust_first

    app = bootstrap.app()
    if history(app, "infra-up"):
        governed_config("infra-up", app)  # a block or file that differs is refused (recorded)
        step = history(app, "infra-up")[-1]
        return InfraChange(
            "approvers config",
            "governed",
            f"digest {step.digest} ({step.how}); change it with `releasegate approvers propose`",
        )
    step, _ = trust_first(
        app, load("approvers"), "releasegate:infra-up", "block releasegate-config/approvers (or file)"
    )
    return InfraChange(
        "approvers config",
        "trusted once",
        f"digest {step.digest}: from now on changes are signed by admins (`releasegate approvers propose`)",
    )

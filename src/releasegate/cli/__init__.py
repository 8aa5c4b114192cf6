"""The ``releasegate`` command line: builds ``app`` from the noun modules and defines ``main``."""

from __future__ import annotations

import typer

from releasegate.cli import (
    approvals,
    audit,
    db,
    decisions,
    deferrals,
    events,
    gate_failures,
    infra,
    keys,
    policy,
    registry,
    report,
    runs,
    simulate,
    stack,
    webhook,
)
from releasegate.cli._common import err

__all__ = ["app", "main"]

app = typer.Typer(help="releasegate: governance for ML jobs on Prefect and MLflow.", no_args_is_help=True)

# `releasegate --help` lists commands in the order registered here, top-level commands before groups.
app.command("deploy")(policy.deploy)
app.command("govern")(policy.govern)
app.command("report")(report.report)
app.command("run")(runs.run_cmd)
app.command("watch")(runs.watch_cmd)
app.command("awaiting")(runs.awaiting_cmd)
app.command("approve")(approvals.approve)
app.command("demo")(stack.demo)
app.command("up")(stack.stack_up)
app.command("down")(stack.stack_down)
app.command("simulate")(simulate.simulate_cmd)

app.add_typer(db.db_app, name="db")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(policy.policy_app, name="policy")
app.add_typer(decisions.decisions_app, name="decisions")
app.add_typer(infra.infra_app, name="infra")
app.add_typer(events.events_app, name="events")
app.add_typer(deferrals.deferrals_app, name="deferrals")
app.add_typer(approvals.exception_app, name="exception")
app.add_typer(gate_failures.gate_failures_app, name="gate-failures")
app.add_typer(webhook.webhook_app_cli, name="webhook")
app.add_typer(registry.registry_app, name="registry")
app.add_typer(keys.keys_app, name="keys")


def main() -> None:  # console-script entry point
    from releasegate.store.trust import ServiceKeyError

    try:
        app()
    except ServiceKeyError as exc:  # raised outside typer's own error handling (standalone mode)
        err.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None

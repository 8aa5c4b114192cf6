"""The ``releasegate`` command line: builds ``app`` from the noun modules and defines ``main``."""

from __future__ import annotations

import os

import typer
from typer.core import TyperGroup

from releasegate.policy.crash_retry import HEARTBEAT_ENV, HEARTBEAT_SECONDS

# Flow runs this process starts send heartbeats as often as the pool's (read when Prefect is imported,
# which the commands do lazily): the zombie automation would take a slower one for a dead run.
os.environ.setdefault(HEARTBEAT_ENV, str(HEARTBEAT_SECONDS))

from releasegate.cli import (
    approvals,
    approvers,
    artifact,
    audit,
    capacity,
    db,
    decisions,
    deferrals,
    events,
    evidence,
    gate_failures,
    halt,
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
from releasegate.cli import console as console_cli
from releasegate.cli._common import err, exit_refused
from releasegate.errors import Refused

__all__ = ["app", "main"]


class RefusingGroup(TyperGroup):
    """The root command: a refusal no command handled itself (a ``Refused``: bad input, e.g. a missing
    file, text that is not JSON, a time without its UTC offset) is printed as one line naming the field
    and the rule, exit 2, never as a traceback. Also what ``CliRunner`` runs, so tests see the same."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        """The one place that maps releasegate's exception tree (``releasegate.errors``) to what a user
        sees: a refusal or a broken configuration is one line and exit 2, a service that does not answer
        says which and exit 2, any other ``ReleasegateError`` one line and its ``exit_code``."""
        from releasegate.errors import ConfigError, ReleasegateError, Unavailable
        from releasegate.store.trust import ServiceKeyError

        try:
            return super().invoke(ctx)
        except Refused as exc:
            exit_refused(exc, code=2)
        except ConfigError as exc:  # a configuration file or block: every problem, on one line
            exit_refused(" ".join(str(exc).split()), code=exc.exit_code)
        except ServiceKeyError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        except Unavailable as exc:
            err.print(f"[red]unavailable:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
        except ReleasegateError as exc:
            err.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            import httpx

            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):  # no server where it was told to look
                exit_refused(
                    "PREFECT_API_URL",
                    f"{_api_url()} does not answer ({exc}): start the stack "
                    "(`releasegate up`) or point PREFECT_API_URL at a running Prefect server",
                    code=2,
                )
            raise


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value() or "no PREFECT_API_URL")


app = typer.Typer(
    cls=RefusingGroup, help="releasegate: governance for ML jobs on Prefect and MLflow.", no_args_is_help=True
)

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
app.command("console")(console_cli.console_cmd)
app.command("halt")(halt.halt_cmd)
app.command("resume")(halt.resume_cmd)
app.command("halts")(halt.halts_cmd)

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
app.add_typer(capacity.capacity_app, name="capacity")
app.add_typer(approvers.approvers_app, name="approvers")
app.add_typer(artifact.artifact_app, name="artifact")
app.add_typer(evidence.evidence_app, name="evidence")


def main() -> None:  # console-script entry point
    from releasegate.prefect_startup import apply_startup_timeout, startup_failure
    from releasegate.store.trust import ServiceKeyError

    apply_startup_timeout()  # before Prefect is imported: its ephemeral server needs more than 20 s here
    try:
        app()
    except ServiceKeyError as exc:  # raised outside typer's own error handling (standalone mode)
        err.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
    except RuntimeError as exc:
        said = startup_failure(exc)
        if said is None:
            raise
        err.print(f"[red]error:[/red] {said}", markup=True, highlight=False, soft_wrap=True)
        raise SystemExit(1) from None

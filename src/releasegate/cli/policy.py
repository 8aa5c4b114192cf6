"""`releasegate policy check`, `releasegate deploy` and `releasegate govern`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from releasegate.cli._common import console, err, exit_refused

policy_app = typer.Typer(help="Runtime policies (the activation block).", no_args_is_help=True)


@policy_app.command("check")
def policy_check(
    prefect_file: Annotated[Path, typer.Argument(help="prefect.yaml to check.")] = Path("prefect.yaml"),
) -> None:
    """Exit 1 listing every deployment without a complete runtime policy or with an invalid schedule, 0 if
    none; exit 2 if the file cannot be read (not found, not valid YAML, a duplicated key)."""
    from rich.markup import escape

    from releasegate.policy.runtime_policy import check_deployments, load_prefect_yaml

    if not prefect_file.is_file():
        err.print(f"[red]error:[/red] {prefect_file} not found")
        raise typer.Exit(2)
    try:
        doc = load_prefect_yaml(prefect_file)
    except (ValueError, OSError) as exc:  # YamlError is a ValueError: file, line and rule
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        err.print(f"fix {prefect_file} and run `releasegate policy check` again")
        raise typer.Exit(2) from None
    queues, pool = _capacity_queues(prefect_file)
    ok, bad = check_deployments(doc, queues, pool)
    for name in ok:
        console.print(f"[green]ok[/green]      {name}")
    for problem in bad:
        console.print(f"[red]problem[/red] {escape(str(problem))}")
    if bad:
        err.print(
            f"{len(bad)} deployment(s) lack a complete runtime policy or a valid schedule: "
            f"{escape(', '.join(p.deployment for p in bad))}; fix the problems listed and run the check again"
        )
        raise typer.Exit(1)
    console.print(f"{len(ok)} deployment(s), every one with a complete runtime policy and valid schedules")


def _capacity_queues(prefect_file: Path) -> tuple[dict[str, str] | None, str | None]:
    """Deployment -> queue of the capacity policy beside prefect.yaml ($RELEASEGATE_CAPACITY_POLICY or
    blocks/capacity_policy.yaml), to check both agree; (None, None) when the project has none."""
    from releasegate.adapters.config import capacity_from_file

    env = os.environ.get("RELEASEGATE_CAPACITY_POLICY")
    path = Path(env) if env else prefect_file.resolve().parent / "blocks" / "capacity_policy.yaml"
    if not path.is_file():
        return None, None
    config = capacity_from_file(path)
    return {name: gate.queue for name, gate in config.deployments.items()}, config.pool_name


def deploy(
    name: Annotated[list[str] | None, typer.Option("--name", "-n", help="Deployment(s); default all.")] = None,
    prefect_file: Annotated[Path, typer.Option(help="prefect.yaml")] = Path("prefect.yaml"),
) -> None:
    """Deploy through Prefect, refusing any deployment without a complete runtime policy."""
    from releasegate.policy.runtime_policy import check_deployments, load_prefect_yaml

    if not prefect_file.is_file():
        err.print(f"[red]error:[/red] {prefect_file} not found (give --prefect-file or run from the project folder)")
        raise typer.Exit(2)
    try:
        doc = load_prefect_yaml(prefect_file)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        err.print(f"nothing was deployed: fix {prefect_file} and run `releasegate deploy` again")
        raise typer.Exit(2) from None
    queues, pool = _capacity_queues(prefect_file)
    ok, bad = check_deployments(doc, queues, pool)
    wanted = set(name) if name else set(ok) | {p.deployment for p in bad}
    unknown = wanted - set(ok) - {p.deployment for p in bad}
    if unknown:
        err.print(f"[red]error:[/red] no deployment named {', '.join(sorted(unknown))} in {prefect_file}")
        raise typer.Exit(2)
    refused = [p for p in bad if p.deployment in wanted]
    if refused:
        for p in refused:
            err.print(f"[red]refused:[/red] {p}")
        err.print("no deployment was activated: add the missing runtime policy and deploy again")
        raise typer.Exit(1)
    sibling = Path(sys.executable).with_name("prefect")  # the prefect installed beside releasegate
    cmd = [
        str(sibling) if sibling.exists() else "prefect",
        "--no-prompt",
        "deploy",
        "--prefect-file",
        str(prefect_file),
    ]
    for n in sorted(wanted):
        cmd += ["--name", n]
    env = {**os.environ, "PWD": str(prefect_file.resolve().parent)}
    console.print("$ " + " ".join(cmd))
    raise typer.Exit(subprocess.call(cmd, env=env, cwd=prefect_file.resolve().parent))


def govern(
    requested_by: Annotated[str, typer.Option(help="Who asks for the run.")],
    reason_code: Annotated[
        str, typer.Option(help="hotfix, recovery, governance_run, backfill, other")
    ] = "governance_run",
    ticket_ref: Annotated[str | None, typer.Option()] = None,
    approved_at: Annotated[str | None, typer.Option(help="ISO 8601 with offset, e.g. 2026-11-23T08:00:00Z")] = None,
    environment: Annotated[str, typer.Option(help="dev, staging or prod")] = "dev",
) -> None:
    """Run a governance run now, in this process (ephemeral or configured Prefect API)."""
    from releasegate.adapters.prefect_flows import load_deployment_flow

    governance_run = load_deployment_flow("governance-run")
    state = governance_run(
        requested_by=requested_by,
        reason_code=reason_code,
        ticket_ref=ticket_ref,
        approved_at=approved_at,
        target_environment=environment,
        return_state=True,
    )
    if not state.is_completed():
        exit_refused(str(state.message))
    console.print_json(data=state.result())

"""`releasegate policy check`, `releasegate deploy` and `releasegate govern`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from releasegate.cli._common import console, err, exit_refused, parse_time

policy_app = typer.Typer(help="Runtime policies (the activation block).", no_args_is_help=True)


@policy_app.command("check")
def policy_check(
    prefect_file: Annotated[Path, typer.Argument(help="prefect.yaml to check.")] = Path("prefect.yaml"),
) -> None:
    """Exit 1 listing every deployment without a complete runtime policy or with an invalid schedule, 0 if
    none; exit 2 if the file cannot be read (not found, not valid YAML, a duplicated key)."""
    from rich.markup import escape

    from releasegate.policy.runtime_policy import check_deployments

    doc = _read_prefect_yaml(prefect_file, "prefect_file", "run `releasegate policy check` again")
    queues, pool, pool_cap = _capacity_queues(prefect_file)
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
    from releasegate.cli.capacity import pool_warning

    if pool_cap is not None and (warning := pool_warning(pool_cap)):
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}")


def _read_prefect_yaml(prefect_file: Path, field: str, then: str, project_hint: bool = False) -> dict:
    """prefect.yaml parsed, or one refusal line naming the file (and the line and rule of a YAML error),
    exit 2."""
    from releasegate.policy.runtime_policy import load_prefect_yaml

    if not prefect_file.is_file():
        hint = " (give --prefect-file or run from the project folder)" if project_hint else ""
        exit_refused(field, f"{prefect_file} not found{hint}", code=2)
    try:
        return load_prefect_yaml(prefect_file)
    except (ValueError, OSError) as exc:  # YamlError is a ValueError: file, line and rule
        exit_refused(field, f"{exc}; fix {prefect_file} and {then}", code=2)


def _capacity_queues(prefect_file: Path) -> tuple[dict[str, str] | None, str | None, int | None]:
    """Deployment -> queue of the capacity policy beside prefect.yaml ($RELEASEGATE_CAPACITY_POLICY or
    blocks/capacity_policy.yaml), to check both agree, its pool and pool cap; Nones when the project has none."""
    from releasegate.adapters.config import capacity_from_file

    env = os.environ.get("RELEASEGATE_CAPACITY_POLICY")
    path = Path(env) if env else prefect_file.resolve().parent / "blocks" / "capacity_policy.yaml"
    if not path.is_file():
        return None, None, None
    config = capacity_from_file(path)
    queues = {name: gate.queue for name, gate in config.deployments.items()}
    return queues, config.pool_name, config.pool_concurrency_limit


def _eod_per_model(doc: dict) -> list[dict]:
    """The per-model EOD deployments (``policy.eod_deployments``) from the model manifest the flows read
    (block, else file; none without a manifest); a manifest or name problem exits 2, nothing deployed."""
    from releasegate.adapters.config import ConfigError, load
    from releasegate.policy.eod_deployments import eod_deployments

    try:
        manifest = load("models")
    except ConfigError as exc:
        if "cannot be read" in exc.rule and not os.environ.get("RELEASEGATE_MODELS"):
            return []  # no manifest: no model has its own EOD schedule
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        return eod_deployments(doc, manifest)
    except ValueError as exc:
        err.print(f"[red]refused:[/red] {exc}")
        err.print("nothing was deployed")
        raise typer.Exit(2) from None


def deploy(
    name: Annotated[list[str] | None, typer.Option("--name", "-n", help="Deployment(s); default all.")] = None,
    prefect_file: Annotated[Path, typer.Option(help="prefect.yaml")] = Path("prefect.yaml"),
) -> None:
    """Deploy through Prefect, refusing any deployment without a complete runtime policy. With
    releasegate's prefect.yaml, every model whose manifest entry has `eod: {cron, timezone}` also gets its
    own scheduled EOD deployment, eod-scoring/<model> (deployed with eod-scoring, or by that name)."""
    import tempfile

    import yaml

    from releasegate.policy.eod_deployments import EOD, eod_deployment_name
    from releasegate.policy.runtime_policy import check_deployments

    doc = _read_prefect_yaml(
        prefect_file, "--prefect-file", "run `releasegate deploy` again (nothing was deployed)", project_hint=True
    )
    queues, pool, _ = _capacity_queues(prefect_file)
    ok, bad = check_deployments(doc, queues, pool)
    declared = set(ok) | {p.deployment for p in bad}
    asked = set(name or [])
    per_model = []
    if EOD in declared and (not asked or EOD in asked or any(n.startswith(f"{EOD}/") for n in asked)):
        per_model = _eod_per_model(doc)
    generated = {eod_deployment_name(d["name"]): d for d in per_model}
    wanted = set(name) if name else declared | set(generated)
    if EOD in wanted:
        wanted |= set(generated)  # a model's EOD deployment goes with eod-scoring
    unknown = wanted - declared - set(generated)
    if unknown:
        known = f"; models' EOD deployments (from eod: in the model manifest): {', '.join(generated) or 'none'}"
        exit_refused(
            "--name",
            f"no deployment named {', '.join(sorted(unknown))} in {prefect_file}{known if EOD in declared else ''}",
            code=2,
        )
    refused = [p for p in bad if p.deployment in wanted or (p.deployment == EOD and wanted & set(generated))]
    if refused:
        for p in refused:
            err.print(f"[red]refused:[/red] {p}")
        err.print("no deployment was activated: add the missing runtime policy and deploy again")
        raise typer.Exit(1)
    sibling = Path(sys.executable).with_name("prefect")  # the prefect installed beside releasegate
    project = prefect_file.resolve().parent
    with tempfile.TemporaryDirectory(prefix="releasegate-deploy-") as tmp:
        source = prefect_file
        if generated:  # prefect.yaml plus the models' EOD deployments, in a file of our own
            source = Path(tmp) / "prefect.yaml"
            full = {**doc, "deployments": [*(doc.get("deployments") or []), *generated.values()]}
            source.write_text(yaml.safe_dump(full, sort_keys=False))
            for full_name, dep in generated.items():
                sched = dep["schedules"][0]
                console.print(
                    f"model EOD deployment {full_name}: {sched['cron']} {sched['timezone']}"
                    f"{'' if sched['active'] else ' (inactive)'}",
                    markup=False,
                    highlight=False,
                )
        cmd = [str(sibling) if sibling.exists() else "prefect", "--no-prompt", "deploy", "--prefect-file", str(source)]
        for n in sorted(wanted):
            cmd += ["--name", n]
        env = {**os.environ, "PWD": str(project)}
        console.print("$ " + " ".join(cmd))
        code = subprocess.call(cmd, env=env, cwd=project)
    raise typer.Exit(code)


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
    from releasegate import bootstrap
    from releasegate.adapters.prefect_flows import load_deployment_flow

    if approved_at is not None:
        parse_time(approved_at, "approved_at")  # refused here, before any run starts

    governance_run = load_deployment_flow("governance-run", bootstrap.app().project_root)
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

"""The ``releasegate`` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from .decisions import DecisionKind, DecisionOutcome, DecisionRefused, NewDecision

app = typer.Typer(help="releasegate: governance for ML jobs on Prefect and MLflow.", no_args_is_help=True)
db_app = typer.Typer(help="Decision-log database.", no_args_is_help=True)
audit_app = typer.Typer(help="Audit the decision log.", no_args_is_help=True)
policy_app = typer.Typer(help="Runtime policies (the activation block).", no_args_is_help=True)
decisions_app = typer.Typer(help="List or add decision records.", invoke_without_command=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")
app.add_typer(decisions_app, name="decisions")
infra_app = typer.Typer(help="Prefect infrastructure: work pool, queues, caps.", no_args_is_help=True)
events_app = typer.Typer(help="Event intake.", no_args_is_help=True)
deferrals_app = typer.Typer(help="Deferred runs: list, override.", invoke_without_command=True)
app.add_typer(infra_app, name="infra")
app.add_typer(events_app, name="events")
app.add_typer(deferrals_app, name="deferrals")

console = Console()
err = Console(stderr=True)


def _log():
    from .adapters import context

    return context.decision_log()


def _plain_log():
    """The log without the service seal: what `decisions add` writes is a note nothing trusts."""
    from .adapters import context
    from .decision_log import DecisionLog

    return DecisionLog(context.settings().resolved_database_url, clock=context.clock())


TRUSTED_KIND_COMMANDS = {
    "approval": "`releasegate approve` (or the approval form of the paused promotion run)",
    "promotion": "the promotion deployment",
    "override": "`releasegate exception grant` or `releasegate deferrals override`",
    "rollback": "the rollback deployment",
    "refusal": "releasegate itself",
}


def _refuse_trusted_kind(kind: DecisionKind, subject: str, actor: str) -> None:
    """Trusted kinds are written only by the commands that check their rules; record the attempt."""
    rule = f"{kind.value} records are written only by {TRUSTED_KIND_COMMANDS[kind.value]}, never by `decisions add`"
    rec = _log().append(
        NewDecision(
            decision_kind=DecisionKind.refusal,
            decision_outcome=DecisionOutcome.reject,
            decision_rationale=f"decisions add refused: decision_kind: {rule}",
            subject=subject.strip() or "<missing>",
            actor=actor.strip() or "<missing>",
            details={"field": "decision_kind", "rule": rule, "refused_kind": kind.value},
        )
    )
    err.print(f"[red]refused:[/red] kind: {rule} (recorded as decision {rec.decision_id})")
    raise typer.Exit(1)


def _record_json(rec) -> dict:
    return rec.model_dump(mode="json")


# ------------------------------------------------------------------------------------------ db
@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the decision-log schema migrations (also done automatically on first use)."""
    from . import db
    from .settings import Settings

    url = Settings().resolved_database_url
    engine = db.create_db_engine(url)
    db.upgrade(engine, revision)
    shown = engine.url.render_as_string(hide_password=True)
    console.print(f"database {shown} at revision {db.current_revision(engine)}")


# ------------------------------------------------------------------------------------ decisions
@decisions_app.callback()
def decisions_list(
    ctx: typer.Context,
    kind: Annotated[DecisionKind | None, typer.Option(help="Only this kind.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest last.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """List decision records (oldest first)."""
    if ctx.invoked_subcommand is not None:
        return
    records = _log().query(kind=kind, subject=subject, limit=limit, newest_first=True)[::-1]
    if as_json:
        typer.echo(json.dumps([_record_json(r) for r in records], indent=2))
        return
    table = Table(title=f"decisions ({len(records)})")
    for col in ("timestamp (UTC)", "kind", "outcome", "subject", "decision_id", "rationale"):
        table.add_column(col, overflow="fold")
    for r in records:
        table.add_row(
            r.decision_timestamp.strftime("%Y-%m-%d %H:%M:%S"),
            r.decision_kind.value,
            r.decision_outcome.value,
            r.subject,
            r.decision_id,
            r.decision_rationale,
        )
    console.print(table)


@decisions_app.command("add")
def decisions_add(
    kind: Annotated[DecisionKind, typer.Option(help="Decision kind.")],
    outcome: Annotated[DecisionOutcome, typer.Option(help="accept, reject or override.")],
    rationale: Annotated[str, typer.Option(help="Why.")],
    subject: Annotated[str, typer.Option(help="What it is about, e.g. deployment:backfill.")],
    actor: Annotated[str, typer.Option("--by", help="Who decided.")],
    tech_gate_report_ref: str | None = None,
    pm_gate_ref: str | None = None,
    risk_gate_ref: str | None = None,
    joint_release_ack_ref: str | None = None,
    rollback_plan_ref: str | None = None,
    exception_expiry: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%dT%H:%M:%S%z"])] = None,
    details: Annotated[str, typer.Option(help="JSON object with kind-specific fields.")] = "{}",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Append a decision record (refused, naming the field, when a rule is broken)."""
    try:
        extra = json.loads(details)
        if not isinstance(extra, dict):
            raise ValueError("must be a JSON object")
    except ValueError as exc:
        err.print(f"[red]refused:[/red] details: {exc}")
        raise typer.Exit(2) from None
    from .trust import TRUSTED_KINDS

    if kind in TRUSTED_KINDS:
        _refuse_trusted_kind(kind, subject, actor)
    try:
        rec = _plain_log().append(
            NewDecision(
                decision_kind=kind,
                decision_outcome=outcome,
                decision_rationale=rationale,
                subject=subject,
                actor=actor,
                tech_gate_report_ref=tech_gate_report_ref,
                pm_gate_ref=pm_gate_ref,
                risk_gate_ref=risk_gate_ref,
                joint_release_ack_ref=joint_release_ack_ref,
                rollback_plan_ref=rollback_plan_ref,
                exception_expiry=exception_expiry,
                details=extra,
            )
        )
    except DecisionRefused as exc:
        err.print(f"[red]refused:[/red] {exc.field}: {exc.rule}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(_record_json(rec)))
    else:
        console.print(f"recorded {rec.decision_kind.value} decision {rec.decision_id} ({rec.decision_outcome.value})")


# ---------------------------------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; exit 1 naming the first record edited, deleted or reordered."""
    log = _log()
    result = log.verify()
    if not result.ok:
        err.print(f"[red]decision log tampered:[/red] {result.first_break} (after {result.checked} intact records)")
        raise typer.Exit(1)
    unsealed = log.unsealed_trusted()
    console.print(f"decision log intact: {result.checked} records, hash chain verified")
    noted = {
        r.details.get("refused_decision_id"): r.decision_id
        for r in log.query(kind=DecisionKind.refusal)
        if log.is_trusted(r)
    }
    for r in unsealed:
        state = f"ignored, refusal {noted[r.decision_id]}" if r.decision_id in noted else "not yet noted"
        err.print(
            f"[yellow]unsealed[/yellow] {r.decision_kind.value} {r.decision_id} by {r.actor!r}: not written by "
            f"releasegate's service path; no decision trusts it ({state})"
        )
    if any(r.decision_id not in noted for r in unsealed):
        err.print("records of a trusted kind without a valid service seal that no reader has noted yet")
        raise typer.Exit(1)
    console.print("every approval, promotion, override, rollback and refusal carries a valid service seal")


# --------------------------------------------------------------------------------------- policy
@policy_app.command("check")
def policy_check(
    prefect_file: Annotated[Path, typer.Argument(help="prefect.yaml to check.")] = Path("prefect.yaml"),
) -> None:
    """Exit 1 listing every deployment without a complete runtime policy or with an invalid schedule, 0 if
    none; exit 2 if the file cannot be read (not found, not valid YAML, a duplicated key)."""
    from rich.markup import escape

    from .runtime_policy import check_deployments, load_prefect_yaml

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
    from .adapters.config import capacity_from_file

    env = os.environ.get("RELEASEGATE_CAPACITY_POLICY")
    path = Path(env) if env else prefect_file.resolve().parent / "blocks" / "capacity_policy.yaml"
    if not path.is_file():
        return None, None
    config = capacity_from_file(path)
    return {name: gate.queue for name, gate in config.deployments.items()}, config.pool_name


# --------------------------------------------------------------------------------------- deploy
@app.command("deploy")
def deploy(
    name: Annotated[list[str] | None, typer.Option("--name", "-n", help="Deployment(s); default all.")] = None,
    prefect_file: Annotated[Path, typer.Option(help="prefect.yaml")] = Path("prefect.yaml"),
) -> None:
    """Deploy through Prefect, refusing any deployment without a complete runtime policy."""
    from .runtime_policy import check_deployments, load_prefect_yaml

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


# --------------------------------------------------------------------------------------- govern
@app.command("govern")
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
    from .adapters.prefect_flows import load_deployment_flow

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
        err.print(f"[red]refused:[/red] {state.message}")
        raise typer.Exit(1)
    console.print_json(data=state.result())


# ---------------------------------------------------------------------------------------- infra
@infra_app.command("up")
def infra_up_cmd(
    policy_file: Annotated[
        Path | None, typer.Option(help="Capacity policy YAML (default blocks/capacity_policy.yaml).")
    ] = None,
    oncall_webhook: Annotated[
        str | None, typer.Option(help="URL the SLA automations notify (creates the releasegate-oncall block).")
    ] = None,
) -> None:
    """Create or update the work pool, queues, caps, capacity block and SLA automations (idempotent)."""
    from .adapters import context
    from .adapters.config import capacity_from_file
    from .adapters.infra import apply_automations, ensure_oncall_webhook, infra_up

    config = capacity_from_file(policy_file)
    changes = infra_up(config)
    if oncall_webhook:
        changes.append(ensure_oncall_webhook(oncall_webhook))
    changes += apply_automations(context.project_root() / "deployments" / "automations.yaml")
    table = Table(title="releasegate infra")
    for col in ("object", "action", "settings"):
        table.add_column(col, overflow="fold")
    for c in changes:
        table.add_row(c.what, c.action, c.detail)
    console.print(table)


# --------------------------------------------------------------------------------------- events
@events_app.command("send")
def events_send(
    source: Annotated[str, typer.Argument(help="JSON file with one event (or a list), or - for stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per event.")] = False,
) -> None:
    """Validate an event, dedupe it by deployment + idempotency_key, and start its run."""
    from .adapters.prefect_intake import DeploymentMissing, send_event

    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        doc = text  # recorded and refused by intake as not-an-object
        err.print(f"[red]not JSON:[/red] {exc}")
    events = doc if isinstance(doc, list) else [doc]
    refused = 0
    for raw in events:
        try:
            result = send_event(raw)
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


# ------------------------------------------------------------------------------------ deferrals
@deferrals_app.callback()
def deferrals_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Closed deferrals too.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List open deferrals: run, deployment, reason, since, next evaluation, SLA state."""
    if ctx.invoked_subcommand is not None:
        return
    from .adapters import context
    from .deferrals import sla_state

    now = context.clock().now()
    rows = context.scheduling_store().deferrals(None if all_ else "open")
    if as_json:
        typer.echo(
            json.dumps(
                [{**r.__dict__, "sla_now": sla_state(r.first_deferred_at, now).value} for r in rows],
                default=str,
                indent=2,
            )
        )
        return
    table = Table(title=f"{'all' if all_ else 'open'} deferrals ({len(rows)})")
    for col in (
        "flow run",
        "deployment",
        "reason",
        "since (UTC)",
        "waited",
        "next evaluation",
        "attempts",
        "SLA",
        "status",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        waited = int(((r.closed_at or now) - r.first_deferred_at).total_seconds() // 60)
        table.add_row(
            r.flow_run_id,
            r.deployment,
            r.reason_code,
            f"{r.first_deferred_at:%Y-%m-%d %H:%M}",
            f"{waited} min",
            f"{r.next_evaluation_at:%H:%M:%S}",
            str(r.attempts),
            sla_state(r.first_deferred_at, r.closed_at or now).value,
            r.status,
        )
    console.print(table)


@deferrals_app.command("override")
def deferrals_override(
    run: Annotated[str, typer.Argument(help="Flow run id of the deferred run.")],
    ticket: Annotated[str | None, typer.Option(help="Change/incident ticket (required).")] = None,
    by: Annotated[str | None, typer.Option(help="Who grants the override (required).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (required).")] = None,
    expires_in_minutes: Annotated[int, typer.Option(help="Exception expiry.")] = 240,
) -> None:
    """Start a deferred run now; refused without a ticket; recorded as an override decision."""
    from datetime import timedelta

    from .adapters.deferral_ops import OverrideRefused, override_deferral

    try:
        rec = override_deferral(run, ticket, by or "", reason or "", timedelta(minutes=expires_in_minutes))
    except OverrideRefused as exc:
        err.print(f"[red]refused:[/red] {exc.field}: {exc.rule} (recorded as decision {exc.decision_id})")
        raise typer.Exit(1) from None
    console.print(
        f"override recorded as decision {rec.decision_id}; run {run} scheduled to start now "
        f"(exception expires {rec.exception_expiry:%Y-%m-%d %H:%M} UTC)"
    )


# --------------------------------------------------------------------------------------- report
@app.command("report")
def report(
    since: Annotated[datetime | None, typer.Option(help="Start (UTC); default 7 days ago.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    publish: Annotated[bool, typer.Option(help="Publish as a Prefect markdown artifact.")] = True,
) -> None:
    """Scheduling KPIs: runs started, runtime-policy coverage, deferral durations vs the 30-min SLA."""
    from datetime import UTC, timedelta

    from .adapters import context
    from .adapters.config import load_gateway_config
    from .adapters.deferral_ops import kpi_report

    start = since.replace(tzinfo=since.tzinfo or UTC) if since else context.clock().now() - timedelta(days=7)
    rep = kpi_report(load_gateway_config(), start, publish=publish)
    if as_json:
        typer.echo(rep.model_dump_json(indent=2))
        return
    table = Table(title=f"releasegate KPIs since {start:%Y-%m-%d %H:%M} UTC")
    for col in ("KPI", "value", "target", "status"):
        table.add_column(col)
    for row in rep.rows():
        table.add_row(*row)
    console.print(table)


# ------------------------------------------------------------------------------------ promotion
exception_app = typer.Typer(help="Approved exceptions to promotion gates.", no_args_is_help=True)
app.add_typer(exception_app, name="exception")


@app.command("approve")
def approve(
    run: Annotated[str, typer.Argument(help="Flow run id of the paused promotion.")],
    role: Annotated[str, typer.Option(help="pm or risk")],
    by: Annotated[str, typer.Option(help="Approver (must be on the role's allow-list).")],
    ref: Annotated[str, typer.Option(help="Ticket or document of your review.")],
    statement: Annotated[str, typer.Option(help="PM: KPI target accepted. Risk: risk acceptance.")] = "",
    comment: str = "",
    reject: Annotated[bool, typer.Option("--reject", help="Reject the release instead of approving.")] = False,
    wait_seconds: Annotated[int, typer.Option(help="How long to wait for the run to take the approval.")] = 30,
) -> None:
    """Give PM_GATE_PASS or RISK_GATE_PASS to a paused promotion run (same rules as the UI form)."""
    import time as _time

    from prefect import get_client
    from prefect.flow_runs import resume_flow_run

    from .adapters import context
    from .adapters.promotion_ops import (
        approver_config,
        promotion_subject,
        record_approval,
        restore_handshake,
        tech_pass,
    )
    from .handshake import ApprovalFields, ApprovalRefused, Handshake, Role, check_approval

    try:
        role_ = Role(role)
    except ValueError:
        err.print(f"[red]refused:[/red] role: must be pm or risk, got {role!r}")
        raise typer.Exit(2) from None
    with get_client(sync_client=True) as client:
        fr = client.read_flow_run(UUID(run))
    params = fr.parameters or {}
    log = context.decision_log()
    tech_ref, candidate_sha = tech_pass(run)
    base = Handshake(
        model=str(params.get("model_name", "?")),
        candidate_version=str(params.get("candidate_version", "?")),
        requested_by=str(params.get("requested_by", "registry-event")),
        tech_report_ref=tech_ref,
        tech_pass=tech_ref is not None,
        candidate_sha256=candidate_sha,
        allow_lists=approver_config().allow_lists(),
    )
    h = restore_handshake(run, base)
    fields = ApprovalFields(
        approver=by, decision="reject" if reject else "approve", reference=ref, statement=statement, comment=comment
    )
    raw = fields.model_dump() | {"role": role_.value}
    try:
        check_approval(h, role_, fields)
        assert fr.state_type is not None  # a run read from the API has a state
        if fr.state_type.value != "PAUSED":
            raise ApprovalRefused("run", f"run {run} is not waiting for an approval (state {fr.state_name})")
    except ApprovalRefused as exc:
        did = record_approval(run, h, role_, None, f"{exc.field}: {exc.rule}", raw)
        err.print(f"[red]refused:[/red] {exc.field}: {exc.rule} (recorded as decision {did})")
        raise typer.Exit(1) from None
    before = len(log.query(subject=promotion_subject(run)))
    resume_flow_run(fr.id, run_input=raw)
    deadline = _time.monotonic() + wait_seconds
    while _time.monotonic() < deadline:
        new = log.query(subject=promotion_subject(run))[before:]
        mine = [
            r
            for r in new
            if r.decision_kind.value == "approval" and r.details.get("role") == role_.value and log.is_trusted(r)
        ]
        if mine:
            r = mine[-1]
            style = "green" if r.decision_outcome.value == "accept" else "red"
            console.print(f"[{style}]{r.decision_rationale}[/{style}] (decision {r.decision_id})")
            raise typer.Exit(0 if r.decision_outcome.value == "accept" else 1)
        _time.sleep(0.5)
    console.print(f"approval sent to run {run}; it has not recorded it yet (see `releasegate decisions`)")


@exception_app.command("grant")
def exception_grant(
    model: Annotated[str, typer.Argument(help="Model name, e.g. credit.")],
    version: Annotated[str, typer.Argument(help="Staging version the exception covers.")],
    ticket: Annotated[str | None, typer.Option(help="Change/exception ticket (required).")] = None,
    by: Annotated[str | None, typer.Option(help="Who grants it (required; on the exceptions allow-list).")] = None,
    requested_by: Annotated[
        str | None, typer.Option(help="Who asks for the exception (required; four eyes: not --by).")
    ] = None,
    rationale: Annotated[str | None, typer.Option(help="Why (required).")] = None,
    expires: Annotated[
        str | None, typer.Option(help="exception_expiry, ISO 8601 with offset, e.g. 2027-11-30T18:00:00+01:00.")
    ] = None,
    gate: Annotated[str, typer.Option(help="The gate it waives (only kpi_delta can be waived).")] = "kpi_delta",
) -> None:
    """Record an approved exception that waives a promotion gate's margin until it expires.

    Refused (and recorded) unless: --by is on the `exceptions` allow-list of the approvers block, the
    requester is someone else, the gate is one that may be waived, a ticket and a rationale are given,
    and the expiry is a future time with its UTC offset. An exception never waives a worse candidate."""
    from .adapters import context
    from .adapters.promotion_ops import WAIVABLE_GATES, approver_config, exception_subject

    log = context.decision_log()
    subject = exception_subject(model, version)
    details = {
        "ticket_ref": ticket,
        "gate": gate,
        "model_name": model,
        "candidate_version": version,
        "requested_by": requested_by,
    }

    def refuse(field: str, rule: str) -> NoReturn:
        refusal = log.append(
            NewDecision(
                decision_kind=DecisionKind.override,
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"exception refused: {field}: {rule}",
                subject=subject,
                actor=(by or "").strip() or "<missing>",
                details={**details, "refusal": f"{field}: {rule}"},
            )
        )
        err.print(f"[red]refused:[/red] {field}: {rule} (recorded as decision {refusal.decision_id})")
        raise typer.Exit(1)

    expiry = None
    if expires is not None:
        try:
            expiry = datetime.fromisoformat(expires.strip().replace("Z", "+00:00"))
        except ValueError:
            refuse("expires", f"{expires!r} is not an ISO 8601 time, e.g. 2027-11-30T18:00:00+01:00")
        if expiry.tzinfo is None or expiry.utcoffset() is None:
            refuse("expires", f"{expires!r} has no UTC offset: add one, e.g. {expires}+01:00 or {expires}Z")
    if gate not in WAIVABLE_GATES:
        refuse("gate", f"{gate!r} cannot be waived by an exception (waivable: {', '.join(WAIVABLE_GATES)})")
    if not (by or "").strip():
        refuse("by", "required: who grants the exception")
    allowed = approver_config().exceptions
    if by not in allowed:
        refuse("by", f"{by!r} is not on the exceptions allow-list (approvers block, key `exceptions`)")
    if not (requested_by or "").strip():
        refuse("requested_by", "required: who asks for the exception (four eyes)")
    if requested_by == by:
        refuse("by", f"four eyes: {by!r} asked for this exception and cannot grant it")
    try:
        rec = log.append(
            NewDecision(
                decision_kind=DecisionKind.override,
                decision_outcome=DecisionOutcome.override,
                decision_rationale=rationale or "",
                subject=subject,
                actor=by,
                exception_expiry=expiry,
                details=details,
            )
        )
    except DecisionRefused as exc:
        refuse(exc.field, exc.rule)
    console.print(
        f"exception for {model} v{version} ({gate}) recorded as decision {rec.decision_id}, "
        f"expires {rec.exception_expiry:%Y-%m-%d %H:%M} UTC"
    )


gate_failures_app = typer.Typer(help="Promotion gate failures and their acknowledgement.", invoke_without_command=True)
app.add_typer(gate_failures_app, name="gate-failures")


@gate_failures_app.callback()
def gate_failures_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Gate failures of the last 7 days; unacknowledged ones become a P1 incident after 30 minutes."""
    if ctx.invoked_subcommand is not None:
        return
    from .adapters.gate_failures import open_gate_failures

    failures, acked, escalated = open_gate_failures()
    rows = [
        f | {"acknowledged": f["decision_id"] in acked, "incident": f["decision_id"] in escalated} for f in failures
    ]
    if as_json:
        typer.echo(json.dumps(rows, default=str, indent=2))
        return
    table = Table(title=f"gate failures ({len(rows)})")
    for col in ("decision_id", "at (UTC)", "model", "version", "outcome", "acknowledged", "incident"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["decision_id"],
            f"{r['at']:%Y-%m-%d %H:%M}",
            str(r["model_name"]),
            str(r["candidate_version"]),
            str(r["outcome"]),
            "yes" if r["acknowledged"] else "NO",
            "P1" if r["incident"] else "",
        )
    console.print(table)


@gate_failures_app.command("ack")
def gate_failures_ack(
    decision_id: Annotated[str, typer.Argument(help="Decision id of the hold/reject.")],
    by: Annotated[str, typer.Option(help="Who acknowledges.")],
    note: Annotated[str, typer.Option(help="What happens next.")] = "",
) -> None:
    """Acknowledge a gate failure (stops its escalation to a P1 incident)."""
    from .adapters.gate_failures import acknowledge

    if not by.strip():
        err.print("[red]refused:[/red] by: required")
        raise typer.Exit(1)
    try:
        did = acknowledge(decision_id, by, note)
    except ValueError as exc:
        err.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"gate failure {decision_id} acknowledged as decision {did}")


# ------------------------------------------------------------------------------ registry events
webhook_app_cli = typer.Typer(help="MLflow webhook receiver.", no_args_is_help=True)
registry_app = typer.Typer(help="MLflow registry events.", no_args_is_help=True)
app.add_typer(webhook_app_cli, name="webhook")
app.add_typer(registry_app, name="registry")


@webhook_app_cli.command("serve")
def webhook_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
) -> None:
    """Receive MLflow webhooks at POST /webhooks/mlflow (secret: RELEASEGATE_WEBHOOK_SECRET)."""
    import uvicorn

    from .adapters.webhook_app import create_app

    if not os.environ.get("RELEASEGATE_WEBHOOK_SECRET"):
        err.print("[red]error:[/red] set RELEASEGATE_WEBHOOK_SECRET to the secret given to MlflowClient.create_webhook")
        raise typer.Exit(2)
    console.print(f"releasegate webhook receiver on http://{host}:{port}/webhooks/mlflow")
    uvicorn.run(create_app(), host=host, port=port, log_level="info")


@registry_app.command("watch")
def registry_watch(
    once: Annotated[bool, typer.Option("--once/--loop", help="One poll, or poll forever.")] = True,
    interval: Annotated[int, typer.Option(help="Seconds between polls with --loop.")] = 60,
) -> None:
    """Poll the registry for new versions and staging-alias moves and send them as events."""
    import time as _time

    from .adapters.registry_watch import watch_once

    while True:
        results = watch_once()
        for r in results:
            console.print(f"{r.status}: {r.deployment or '-'} {r.flow_run_id or ''} {r.reason or ''}")
        if not results:
            console.print("nothing new")
        if once:
            return
        _time.sleep(interval)


# ----------------------------------------------------------------------------------------- demo
@app.command("demo")
def demo(as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False) -> None:
    """The whole lifecycle on embedded defaults (see `make demo`): promote, EOD, deferral, retrain, rollback."""
    from .demo import run_demo

    raise typer.Exit(run_demo(console, as_json))


# ---------------------------------------------------------------------------------------- stack
STACK_HOME = Path("~/.releasegate/stack")


@app.command("up")
def stack_up(
    home: Annotated[Path, typer.Option(help="State and logs of the stack.")] = STACK_HOME,
    prefect_port: Annotated[int, typer.Option(help="Prefect server (UI and API).")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="MLflow tracking and registry server.")] = 5000,
    webhook_port: Annotated[int, typer.Option(help="releasegate's MLflow webhook receiver.")] = 8765,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="RELEASEGATE_PREFECT_DATABASE_URL",
            help="Prefect server database, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/prefect "
            "(default SQLite under --home).",
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Workers on the releasegate pool.")] = 1,
) -> None:
    """Start the local stack on loopback: Prefect server, MLflow server + webhook, deployments, worker(s)."""
    from .adapters.context import project_root
    from .adapters.stack import up

    try:
        info = up(
            home.expanduser(),
            project_root(),
            prefect_port=prefect_port,
            mlflow_port=mlflow_port,
            webhook_port=webhook_port,
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
    console.print(f"  talk to it:  source {info.home}/stack.env")
    console.print("  then: start 'governance-run' from the Prefect UI, or `releasegate govern --requested-by you`")


@app.command("down")
def stack_down(home: Annotated[Path, typer.Option(help="State and logs of the stack.")] = STACK_HOME) -> None:
    """Stop what `releasegate up` started (its logs stay)."""
    from .adapters.stack import down

    stopped = down(home.expanduser())
    console.print(f"stopped: {', '.join(stopped)}" if stopped else f"no stack is up in {home}")


# ------------------------------------------------------------------------------------- simulate
@app.command("simulate")
def simulate_cmd(
    days: Annotated[int, typer.Option(help="Days of schedules to simulate.")] = 7,
    deployments: Annotated[int, typer.Option(help="Number of deployments in the workload.")] = 200,
    seed: Annotated[int, typer.Option(help="Workload seed (deterministic).")] = 42,
    pool_cap: Annotated[int | None, typer.Option(help="Pool concurrency cap (default deployments // 10).")] = None,
    bulk_cap: Annotated[int | None, typer.Option(help="Cap of the bulk queue (default: the pool cap).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """A week of cron schedules through the capacity gateway and through Prefect-native dispatch.

    Virtual clock; the gateway is the same code the flows call. Priority window and backoff come from
    the shipped capacity policy (blocks/capacity_policy.yaml)."""
    from .simulate import SimConfig, simulate

    base = {}
    try:
        from .adapters.config import capacity_from_file

        shipped = capacity_from_file()
        base = {"priority_window_minutes": shipped.priority_window_minutes, "backoff_seconds": shipped.backoff_seconds}
        base |= {"sla_alert_minutes": shipped.sla_alert_minutes, "sla_incident_minutes": shipped.sla_incident_minutes}
    except FileNotFoundError as exc:  # no project folder: the simulation's own defaults are the shipped values
        err.print(f"[yellow]shipped capacity policy not found ({exc}); using the built-in defaults[/]")
    try:
        cfg = SimConfig(days=days, deployments=deployments, seed=seed, pool_cap=pool_cap, bulk_cap=bulk_cap, **base)
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    report = simulate(cfg)
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    _print_simulation(report)


def _print_simulation(report) -> None:
    n, g = report.prefect_native, report.releasegate
    kinds = ", ".join(f"{k} {v}" for k, v in report.runs_by_kind.items())
    console.print(
        f"[bold]{report.config.days} days x {report.config.deployments} deployments[/]: "
        f"{n.runs} runs ({kinds}); pool cap {report.pool_cap}; simulated in {report.seconds:.2f} s"
    )
    t = Table("", "prefect-native", "releasegate")
    pct = lambda v: f"{v:.1%}"  # noqa: E731
    mins = lambda v: f"{v:.1f} min"  # noqa: E731
    rows = [
        ("EOD runs", str(n.eod_runs), str(g.eod_runs)),
        ("EOD started on time (<= 5 min)", pct(n.eod_on_time_share), pct(g.eod_on_time_share)),
        ("EOD start delay p50", mins(n.eod_delay_p50_minutes), mins(g.eod_delay_p50_minutes)),
        ("EOD start delay p95", mins(n.eod_delay_p95_minutes), mins(g.eod_delay_p95_minutes)),
        ("EOD start delay max", mins(n.eod_delay_max_minutes), mins(g.eod_delay_max_minutes)),
        (
            "EOD SLA breaches (> 30 / > 60 min)",
            f"{pct(n.eod_sla_alert_share)} / {pct(n.eod_sla_incident_share)}",
            f"{pct(g.eod_sla_alert_share)} / {pct(g.eod_sla_incident_share)}",
        ),
        ("all runs: start delay p50", mins(n.all_delay_p50_minutes), mins(g.all_delay_p50_minutes)),
        ("all runs: start delay p95", mins(n.all_delay_p95_minutes), mins(g.all_delay_p95_minutes)),
        (
            "all runs: SLA breaches (> 30 / > 60 min)",
            f"{pct(n.all_sla_alert_share)} / {pct(n.all_sla_incident_share)}",
            f"{pct(g.all_sla_alert_share)} / {pct(g.all_sla_incident_share)}",
        ),
        ("runs started inside a freeze/maintenance window", str(n.started_in_window), str(g.started_in_window)),
        ("pool utilisation", pct(n.utilisation), pct(g.utilisation)),
        ("gateway evaluations", "-", f"{g.gateway_evaluations:,}"),
        ("model time", f"{n.seconds:.2f} s", f"{g.seconds:.2f} s"),
    ]
    for r in rows:
        t.add_row(*r)
    console.print(t)
    d = Table(
        "deferral reason",
        "deferrals",
        "runs",
        "p50",
        "p95",
        "max",
        title="releasegate deferrals (time deferred per run)",
    )
    for code, s in g.deferrals_by_reason.items():
        d.add_row(
            code, f"{s.deferrals:,}", f"{s.runs:,}", mins(s.p50_minutes), mins(s.p95_minutes), mins(s.max_minutes)
        )
    console.print(d)


def main() -> None:  # console-script entry point
    from .trust import ServiceKeyError

    try:
        app()
    except ServiceKeyError as exc:  # raised outside typer's own error handling (standalone mode)
        err.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None

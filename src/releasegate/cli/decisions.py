"""`releasegate decisions` (list) and `releasegate decisions add`, with the refusal of trusted kinds."""

from __future__ import annotations

import json
from typing import Annotated, NoReturn

import typer
from rich.table import Table

from releasegate import records
from releasegate.cli._common import _log, _plain_log, _record_json, console, exit_refused, parse_time
from releasegate.decisions import DecisionKind, DecisionOutcome, DecisionRefused

decisions_app = typer.Typer(help="List or add decision records.", invoke_without_command=True)

TRUSTED_KIND_COMMANDS = {
    "approval": "`releasegate approve` (or the approval form of the paused promotion run)",
    "promotion": "the promotion deployment",
    "override": "`releasegate exception grant` or `releasegate deferrals override`",
    "rollback": "the rollback deployment",
    "refusal": "releasegate itself",
    "gate_failure_ack": "`releasegate gate-failures ack`",
    "incident": "the deferral sweeper",
    "approvers_config": "`releasegate infra up` and `releasegate approvers propose|approve`",
    "notification": "the promotion deployment (its notices to approvers)",
    "halt": "`releasegate halt|resume` (or the console's halt page)",
}


def _refuse_trusted_kind(kind: DecisionKind, subject: str, actor: str) -> NoReturn:
    """Trusted kinds are written only by the commands that check their rules; record the attempt."""
    by = TRUSTED_KIND_COMMANDS.get(kind.value, "releasegate itself")
    rule = f"{kind.value} records are written only by {by}, never by `decisions add`"
    rec = _log().append(
        records.refusal(
            decision_outcome=DecisionOutcome.reject,
            decision_rationale=f"decisions add refused: decision_kind: {rule}",
            subject=subject.strip() or "<missing>",
            actor=actor.strip() or "<missing>",
            details={"field": "decision_kind", "rule": rule, "refused_kind": kind.value},
        )
    )
    exit_refused("kind", rule, decision_id=rec.decision_id)


@decisions_app.callback()
def decisions_list(
    ctx: typer.Context,
    kind: Annotated[DecisionKind | None, typer.Option(help="Only this kind.")] = None,
    subject: Annotated[str | None, typer.Option(help="Only this subject.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest last.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="One tab-separated line per record, never cut or folded (for grep).")
    ] = False,
) -> None:
    """List decision records (oldest first). The table fits the terminal (80 columns when piped): use
    --wide or --json for every character on one line per record."""
    if ctx.invoked_subcommand is not None:
        return
    records = _log().query(kind=kind, subject=subject, limit=limit, newest_first=True)[::-1]
    if as_json:
        typer.echo(json.dumps([_record_json(r) for r in records], indent=2))
        return
    if wide:
        for r in records:
            cells = (
                r.decision_timestamp.strftime("%Y-%m-%d %H:%M:%S"),
                r.decision_kind.value,
                r.decision_outcome.value,
                r.subject,
                r.decision_id,
                r.decision_rationale,
            )
            typer.echo("\t".join(" ".join(str(c).split()) for c in cells))
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
    exception_expiry: Annotated[str | None, typer.Option(help="ISO 8601 with offset: 2030-01-01T00:00:00Z")] = None,
    details: Annotated[str, typer.Option(help="JSON object with kind-specific fields.")] = "{}",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Append a decision record (refused, naming the field, when a rule is broken)."""
    try:
        extra = json.loads(details)
        if not isinstance(extra, dict):
            raise ValueError("must be a JSON object")
    except ValueError as exc:
        exit_refused("details", str(exc), code=2)
    from releasegate.store.trust import TRUSTED_KINDS

    if kind in TRUSTED_KINDS:
        _refuse_trusted_kind(kind, subject, actor)
    try:
        rec = _plain_log().append(
            records.entered(
                kind,
                decision_outcome=outcome,
                decision_rationale=rationale,
                subject=subject,
                actor=actor,
                tech_gate_report_ref=tech_gate_report_ref,
                pm_gate_ref=pm_gate_ref,
                risk_gate_ref=risk_gate_ref,
                joint_release_ack_ref=joint_release_ack_ref,
                rollback_plan_ref=rollback_plan_ref,
                exception_expiry=parse_time(exception_expiry, "exception_expiry") if exception_expiry else None,
                details=extra,
            )
        )
    except DecisionRefused as exc:
        exit_refused(exc)
    if as_json:
        typer.echo(json.dumps(_record_json(rec)))
    else:
        console.print(f"recorded {rec.decision_kind.value} decision {rec.decision_id} ({rec.decision_outcome.value})")

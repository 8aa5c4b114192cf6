"""`releasegate approve` and `releasegate exception grant`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from releasegate import records
from releasegate.cli._common import console, exit_refused
from releasegate.decisions import DecisionOutcome, DecisionRefused

exception_app = typer.Typer(help="Approved exceptions to promotion gates.", no_args_is_help=True)


def approve(
    run: Annotated[str, typer.Argument(help="Flow run id of the paused promotion.")],
    role: Annotated[str, typer.Option(help="pm, risk or compliance (models of risk_tier high)")],
    by: Annotated[str, typer.Option(help="Approver (must be on the role's allow-list).")],
    ref: Annotated[str, typer.Option(help="Ticket or document of your review.")],
    statement: Annotated[str, typer.Option(help="PM: KPI target accepted. Risk: risk acceptance.")] = "",
    comment: str = "",
    reject: Annotated[bool, typer.Option("--reject", help="Reject the release instead of approving.")] = False,
    wait_seconds: Annotated[int, typer.Option(help="How long to wait for the run to take the approval.")] = 30,
    key: Annotated[
        Path | None, typer.Option("--key", help="Your private key (default <RELEASEGATE_KEY_DIR>/<--by>.pem).")
    ] = None,
    token_only: Annotated[
        bool, typer.Option("--token-only", help="Print the signed token (to paste into the UI form); send nothing.")
    ] = False,
) -> None:
    """Sign and give PM_GATE_PASS, RISK_GATE_PASS or COMPLIANCE_GATE_PASS to a paused promotion run.

    The approval is a statement signed with your key (`releasegate keys init`) over the model, version,
    role, decision, the run's gate report hash, the run id and the time; the run checks it against the key
    pinned for you in the approvers block (same rules as the UI form)."""
    import time as _time

    from releasegate import bootstrap
    from releasegate.policy.handshake import ApprovalFields, ApprovalRefused, Role, check_approval
    from releasegate.policy.signatures import check_signed, sign, statement_for
    from releasegate.services.promotion import (
        handshake_base,
        promotion_subject,
        record_approval,
        restore_handshake,
        tech_pass,
    )
    from releasegate.store.keys import KeyRefused, key_path, load_key

    try:
        role_ = Role(role)
    except ValueError:
        exit_refused("role", f"must be pm, risk or compliance, got {role!r}", code=2)
    try:  # before the run is read: a missing key is refused without reaching Prefect
        signing_key = load_key(key or key_path(bootstrap.settings().key_dir.expanduser(), by))
    except KeyRefused as exc:  # nothing was signed or sent: nothing to record
        exit_refused(exc, code=2)
    from releasegate.adapters.prefect_manual import StartRefused, read_flow_run, resume_paused

    try:
        fr = read_flow_run(run)
    except StartRefused as exc:
        exit_refused(exc.field, f"{exc.rule}; `releasegate awaiting` lists the paused promotions", code=2)
    params = fr.parameters or {}
    app = bootstrap.app()
    log = app.log
    tech_ref, candidate_sha, report_sha = tech_pass(app, run)
    model_name = str(params.get("model_name", "?"))
    base = handshake_base(
        model_name,
        str(params.get("candidate_version", "?")),
        str(params.get("requested_by", "registry-event")),
        app,
        tech_report_ref=tech_ref,
        tech_pass=tech_ref is not None,
        candidate_sha256=candidate_sha,
        gate_report_sha256=report_sha,
    )
    h = restore_handshake(run, base, app)
    fields = ApprovalFields(
        approver=by, decision="reject" if reject else "approve", reference=ref, statement=statement, comment=comment
    )
    raw = fields.model_dump() | {"role": role_.value}
    try:
        check_approval(h, role_, fields)
        assert fr.state_type is not None  # a run read from the API has a state
        if fr.state_type.value != "PAUSED":
            raise ApprovalRefused("run", f"run {run} is not waiting for an approval (state {fr.state_name})")
        signed = sign(statement_for(h, role_, fields, run, bootstrap.clock().now()), signing_key)
        check_signed(h, role_, fields, signed.token(), run, bootstrap.clock().now())  # e.g. not your pinned key
    except ApprovalRefused as exc:
        did = record_approval(run, h, role_, None, f"{exc.field}: {exc.rule}", raw, app=app)
        exit_refused(exc, decision_id=did)
    if token_only:
        console.print(signed.token(), soft_wrap=True, highlight=False)
        return
    raw["token"] = signed.token()
    before = len(log.query(subject=promotion_subject(run)))
    try:  # what the console does too (services.approval_desk)
        resume_paused(run, raw)
    except StartRefused as exc:
        exit_refused(exc, code=2)
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
    key: Annotated[
        Path | None, typer.Option("--key", help="Your private key (default <RELEASEGATE_KEY_DIR>/<--by>.pem).")
    ] = None,
) -> None:
    """Record an approved exception that waives a promotion gate's margin until it expires.

    Refused (and recorded) unless: --by is on the `exceptions` allow-list of the approvers block, the
    requester is someone else, the gate is one that may be waived, a ticket and a rationale are given,
    the expiry is a future time with its UTC offset, and the grant is signed with --by's pinned key
    (`releasegate keys init`). An exception never waives a worse candidate."""
    from releasegate import bootstrap
    from releasegate.policy.grants import GrantRefused, GrantStatement
    from releasegate.services.grants import signed_grant
    from releasegate.services.promotion import WAIVABLE_GATES, approver_config, exception_subject
    from releasegate.store.keys import KeyRefused

    app = bootstrap.app()
    log = app.log
    subject = exception_subject(model, version)
    details = {
        "ticket_ref": ticket,
        "gate": gate,
        "model_name": model,
        "candidate_version": version,
        "requested_by": requested_by,
    }

    def refuse(field: str, rule: str, code: int = 1) -> NoReturn:
        refusal = log.append(
            records.override(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"exception refused: {field}: {rule}",
                subject=subject,
                actor=(by or "").strip() or "<missing>",
                details={**details, "refusal": f"{field}: {rule}"},
            )
        )
        exit_refused(field, rule, code=code, decision_id=refusal.decision_id)

    expiry = None
    if expires is not None:
        try:
            expiry = datetime.fromisoformat(expires.strip().replace("Z", "+00:00"))
        except ValueError:
            refuse("expires", f"{expires!r} is not an ISO 8601 time, e.g. 2027-11-30T18:00:00+01:00", code=2)
        if expiry.tzinfo is None or expiry.utcoffset() is None:
            refuse("expires", f"{expires!r} has no UTC offset: add one, e.g. {expires}+01:00 or {expires}Z", code=2)
    if gate not in WAIVABLE_GATES:
        refuse("gate", f"{gate!r} cannot be waived by an exception (waivable: {', '.join(WAIVABLE_GATES)})")
    if not (by or "").strip():
        refuse("by", "required: who grants the exception")
    allowed = approver_config(app, reader="exception-grant").exceptions
    if by not in allowed:
        refuse("by", f"{by!r} is not on the exceptions allow-list (approvers block, key `exceptions`)")
    if not (requested_by or "").strip():
        refuse("requested_by", "required: who asks for the exception (four eyes)")
    if requested_by == by:
        refuse("by", f"four eyes: {by!r} asked for this exception and cannot grant it")
    grant: dict = {}  # the signed grant: only on the record that grants it, never on a refusal
    if expiry is not None and (ticket or "").strip():  # otherwise the record itself is refused below
        try:
            grant = signed_grant(
                GrantStatement(
                    kind="gate_exception",
                    subject=subject,
                    granted_by=str(by),
                    ticket_ref=str(ticket),
                    expires_at=expiry,
                    terms={"gate": gate, "requested_by": str(requested_by)},
                    signed_at=bootstrap.clock().now(),
                ),
                key,
                "exceptions",
                app=app,
            )
        except KeyRefused as exc:  # e.g. no key file: bad input
            refuse(exc.field, exc.rule, code=2)
        except GrantRefused as exc:
            refuse(exc.field, exc.rule)
    try:
        rec = log.append(
            records.override(
                decision_outcome=DecisionOutcome.override,
                decision_rationale=rationale or "",
                subject=subject,
                actor=by,
                exception_expiry=expiry,
                details=details | grant,
            )
        )
    except DecisionRefused as exc:
        refuse(exc.field, exc.rule)
    console.print(
        f"exception for {model} v{version} ({gate}) recorded as decision {rec.decision_id}, "
        f"expires {rec.exception_expiry:%Y-%m-%d %H:%M} UTC"
    )

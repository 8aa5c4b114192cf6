"""`releasegate audit verify | checkpoint | export`."""

from __future__ import annotations

from pathlib import Path

import typer

from releasegate.cli._common import _log, console, err
from releasegate.decisions import DecisionKind

audit_app = typer.Typer(help="Audit the decision log.", no_args_is_help=True)


def _pinned_key(public_key: str | None):
    from releasegate import bootstrap
    from releasegate.policy.signatures import parse_public_key

    if public_key is None:  # this service's own key: fine on the service host, an auditor pins it
        return bootstrap.settings().signing_key().public_key()
    text = Path(public_key).read_text() if Path(public_key).is_file() else public_key
    try:
        return parse_public_key(text, "--public-key")
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@audit_app.command("verify")
def audit_verify(
    checkpoints: Path | None = typer.Option(
        None, "--checkpoints", help="Folder of signed checkpoints: prove the log still holds each of them."
    ),
    public_key: str | None = typer.Option(
        None, "--public-key", help="The service's checkpoint key (hex, or a file): default this home's own key."
    ),
) -> None:
    """Walk the hash chain; exit 1 naming the first record edited, deleted or reordered. With
    --checkpoints, also name a consistent rewrite or a cut tail that the chain alone cannot see."""
    from releasegate.store.checkpoints import check, read_checkpoints

    log = _log()
    result = log.verify()
    if checkpoints is not None:
        if not checkpoints.is_dir():
            err.print(f"[red]--checkpoints: {checkpoints} is not a folder[/red] (where `audit checkpoint` wrote)")
            raise typer.Exit(2)
        found = read_checkpoints(checkpoints)
        findings = check(log, found, _pinned_key(public_key))
        for f in findings:
            err.print(f"[red]checkpoint not honoured:[/red] {f}")
        if findings:
            if not result.ok:
                err.print(f"[red]decision log tampered:[/red] {result.first_break}")
            raise typer.Exit(1)
        console.print(f"{len(found)} signed checkpoints verified: the log still holds every record they vouch for")
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
    from releasegate.policy.signatures import recorded_signature_problem

    pinned: dict[str, str] | None = None  # read at the first signed approval (none: nothing to read)
    signed = bad = unsigned = unpinned = 0
    for r in log.query(kind=DecisionKind.approval):
        d = r.details
        if not d.get("signature"):
            business = d.get("role") in ("pm", "risk", "compliance") and not d.get("refusal")
            unsigned += business and r.decision_outcome.value == "accept"
            continue
        signed += 1
        pinned = _pinned_approver_keys() if signed == 1 else pinned
        problem = recorded_signature_problem(r.subject, d)
        if problem:
            bad += 1
            err.print(f"[red]approval signature broken[/red] {r.decision_id} by {r.actor!r}: {problem}")
        elif pinned is not None and pinned.get(str(d.get("approver")), "").lower() != str(d.get("public_key")).lower():
            unpinned += 1
    if unsigned:
        err.print(
            f"[yellow]{unsigned} accepted business approvals carry no signature[/yellow] (given before signed "
            "approvals; no promotion restores them)"
        )
    if unpinned:
        err.print(
            f"[yellow]{unpinned} signed approvals verify with a key that is not pinned for their approver now[/yellow] "
            "(a key replaced since, or a key the approvers block never held: check its history)"
        )
    from releasegate.policy.grants import recorded_grant_problem

    grants = 0
    for r in log.query(kind=DecisionKind.override):
        if not r.details.get("signature"):
            continue
        grants += 1
        problem = recorded_grant_problem(r.subject, r.actor, r.exception_expiry, r.details)
        if problem:
            bad += 1
            err.print(f"[red]grant signature broken[/red] {r.decision_id} by {r.actor!r}: {problem}")
    if bad:
        raise typer.Exit(1)
    console.print(
        f"{signed} signed approvals and {grants} signed exceptions/overrides re-verified against their "
        "statements and keys"
    )


@audit_app.command("checkpoint")
def audit_checkpoint(
    folder: Path | None = typer.Option(
        None, "--dir", help="Where to write (default RELEASEGATE_CHECKPOINT_DIR, else <home>/checkpoints)."
    ),
) -> None:
    """Sign the log's head (last seq, last hash, time) with the service key and write it as a new file
    outside the database. The chain must verify first: a broken log is not vouched for."""
    from releasegate import bootstrap
    from releasegate.services.audit import LogNotVouchedFor, take_checkpoint

    s = bootstrap.settings()
    try:
        taken = take_checkpoint(_log(), s.signing_key(), bootstrap.clock(), folder or s.resolved_checkpoint_dir)
    except LogNotVouchedFor as exc:
        err.print(f"[red]{exc}[/red] (run `releasegate audit verify` for the break)")
        raise typer.Exit(1) from None
    cp = taken.checkpoint
    console.print(f"checkpoint #{cp.last_seq} ({cp.last_hash[:16]}…) signed and written to {taken.path}")
    console.print(f"service public key (pin it: audit verify --public-key): {taken.public_key}")


@audit_app.command("export")
def audit_export(
    out: Path = typer.Option(..., "--out", help="The JSON Lines file to write."),
    checkpoints: Path | None = typer.Option(None, "--checkpoints", help="Checkpoints to include as proofs."),
) -> None:
    """Write the log as JSON Lines for an auditor: every record with seq, prev_hash and record_hash (the
    chain proof: SHA-256 over seq, prev_hash and the record), then the signed checkpoints."""
    from releasegate.store.checkpoints import export_lines, read_checkpoints

    log = _log()
    found = read_checkpoints(checkpoints) if checkpoints is not None and checkpoints.is_dir() else []
    n = 0
    with out.open("w") as fh:
        for line in export_lines(log, found):
            fh.write(line + "\n")
            n += 1
    console.print(f"wrote {n} lines to {out} ({log.count()} records, {n - log.count()} checkpoints)")


def _pinned_approver_keys() -> dict[str, str] | None:
    """The pinned keys: the approvers block when a Prefect API is configured (PREFECT_API_URL), else the
    approvers file (RELEASEGATE_APPROVERS or blocks/approvers.yaml); None when neither can be read (an
    auditor's machine). Never starts a Prefect server of its own."""
    import os

    from releasegate.adapters.config import load

    try:
        return load("approvers", use_block=bool(os.environ.get("PREFECT_API_URL"))).keys
    except Exception:
        return None

"""`releasegate audit verify | checkpoint | export`."""

from __future__ import annotations

from pathlib import Path

import typer

from releasegate.cli._common import _log, console, err, exit_refused
from releasegate.decisions import DecisionKind, DecisionOutcome

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
        exit_refused(exc, code=2)


@audit_app.command("verify")
def audit_verify(
    checkpoints: Path | None = typer.Option(
        None, "--checkpoints", help="Folder of signed checkpoints: prove the log still holds each of them."
    ),
    public_key: str | None = typer.Option(
        None, "--public-key", help="The service's checkpoint key (hex, or a file): default this home's own key."
    ),
) -> None:
    """Walk the hash chain, check decision_index against it, re-check every seal and signature.

    The first line is the verdict: "decision log intact: …" (exit 0) or "decision log NOT verified:" and
    the first finding (exit 1); further findings and notes follow. With --checkpoints, also name a
    consistent rewrite or a cut tail that the chain alone cannot see."""
    from releasegate.store.checkpoints import check, read_checkpoints
    from releasegate.store.index_check import check_index

    if checkpoints is not None and not checkpoints.is_dir():
        exit_refused("--checkpoints", f"{checkpoints} is not a folder (where `audit checkpoint` wrote)", code=2)
    pinned_key = _pinned_key(public_key) if checkpoints is not None else None
    log = _log()
    findings: list[str] = []  # each one line; the first is the verdict
    facts: list[str] = []  # what was verified, said after an intact verdict
    notes: list[str] = []  # warnings that do not fail the log
    result = log.verify()
    if not result.ok:
        findings.append(f"decision log tampered: {result.first_break} (after {result.checked} intact records)")
    if checkpoints is not None and pinned_key is not None:
        found = read_checkpoints(checkpoints)
        problems = check(log, found, pinned_key)
        findings += [f"checkpoint not honoured: {f}" for f in problems]
        if not problems:
            facts.append(f"{len(found)} signed checkpoints verified: the log still holds every record they vouch for")
    if result.ok:  # the records read below are the chain's own: a broken chain is named first, alone
        index = check_index(log)
        findings += [f"index tampered: {f}" for f in index.findings]
        if index.total > len(index.findings):
            findings.append(f"index tampered: {index.total - len(index.findings)} more decision_index rows")
        if index.ok:
            facts.append(f"decision_index verified: its {index.rows} rows are what the records say")
        _check_seals(log, findings, facts, notes)
    if findings:
        err.print(f"[red]decision log NOT verified:[/red] {findings[0]}", soft_wrap=True)
        for f in findings[1:]:
            err.print(f"[red]also:[/red] {f}", soft_wrap=True)
        for n in notes:
            err.print(n, soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"decision log intact: {result.checked} records, hash chain verified")
    for f in facts:
        console.print(f, soft_wrap=True)
    for n in notes:
        err.print(n, soft_wrap=True, highlight=False)


def _check_seals(log, findings: list[str], facts: list[str], notes: list[str]) -> None:
    """The service seal of every trusted record, every approval signature and every signed grant."""
    unsealed = log.unsealed_trusted()
    noted = {
        r.details.get("refused_decision_id"): r.decision_id
        for r in log.query(kind=DecisionKind.refusal)
        if log.is_trusted(r)
    }
    for r in unsealed:
        state = f"ignored, refusal {noted[r.decision_id]}" if r.decision_id in noted else "not yet noted"
        notes.append(
            f"[yellow]unsealed[/yellow] {r.decision_kind.value} {r.decision_id} by {r.actor!r}: not written by "
            f"releasegate's service path; no decision trusts it ({state})"
        )
    not_noted = [r for r in unsealed if r.decision_id not in noted]
    if not_noted:
        findings.append(
            f"{len(not_noted)} records of a trusted kind without a valid service seal that no reader has noted "
            f"yet (first: {not_noted[0].decision_kind.value} {not_noted[0].decision_id})"
        )
    else:
        facts.append("every approval, promotion, override, rollback and refusal carries a valid service seal")
    from releasegate.policy.passkey_approvals import recorded_approval_problem

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
        problem = recorded_approval_problem(r.subject, d)
        if problem:
            bad += 1
            findings.append(f"approval signature broken {r.decision_id} by {r.actor!r}: {problem}")
        elif (
            pinned is not None
            and d.get("signature_scheme") != "webauthn"
            and (pinned.get(str(d.get("approver")), "").lower() != str(d.get("public_key")).lower())
        ):
            unpinned += 1
    if unsigned:
        notes.append(
            f"[yellow]{unsigned} accepted business approvals carry no signature[/yellow] (given before signed "
            "approvals; no promotion restores them)"
        )
    if unpinned:
        notes.append(
            f"[yellow]{unpinned} signed approvals verify with a key that is not pinned for their approver now[/yellow] "
            "(a key replaced since, or a key the approvers block never held: check its history)"
        )
    from releasegate.policy.grants import recorded_grant_problem

    grants = refused = 0
    for r in log.query(kind=DecisionKind.override):
        if r.decision_outcome is not DecisionOutcome.override:
            # a refusal grants nothing (no reader takes it): verified as a refusal, whatever it carries
            refused += 1
            continue
        if not r.details.get("signature"):
            continue
        grants += 1
        problem = recorded_grant_problem(r.subject, r.actor, r.exception_expiry, r.details)
        if problem:
            bad += 1
            findings.append(f"grant signature broken {r.decision_id} by {r.actor!r}: {problem}")
    from releasegate.services.approvers import audit as governed_approvers  # history, keys pinned then

    config_history, config_problems = governed_approvers(log)
    findings += [
        problem if problem.startswith("approvers config") else f"approvers config {problem}"
        for problem in config_problems
    ]
    bad += len(config_problems)
    if not bad:
        refusals = f"; {refused} refused grants are refusals and grant nothing" if refused else ""
        facts.append(
            f"{signed} signed approvals and {grants} signed exceptions/overrides re-verified against their "
            f"statements and keys{refusals}"
        )
    notes += config_history  # the governed approvers config, change by change


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
    except OSError as exc:  # --dir is a file, or a folder that cannot be written
        where = folder or s.resolved_checkpoint_dir
        exit_refused("--dir", f"{where} cannot hold checkpoints ({exc.strerror or exc})", code=2)
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

    if checkpoints is not None and not checkpoints.is_dir():
        exit_refused("--checkpoints", f"{checkpoints} is not a folder (where `audit checkpoint` wrote)", code=2)
    if not out.parent.is_dir() or out.is_dir():
        exit_refused("--out", f"{out} cannot be written: give a file in an existing folder", code=2)
    log = _log()
    found = read_checkpoints(checkpoints) if checkpoints is not None else []
    n = 0
    try:
        fh = out.open("w")
    except OSError as exc:
        exit_refused("--out", f"{out} cannot be written ({exc.strerror or exc})", code=2)
    with fh:
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

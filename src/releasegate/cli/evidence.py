"""`releasegate evidence export | verify`: the signed evidence pack of a model version, and its offline check."""

from __future__ import annotations

from pathlib import Path

import typer

from releasegate.cli._common import console, err, exit_refused

evidence_app = typer.Typer(help="Evidence packs of model versions: export, verify offline.", no_args_is_help=True)


@evidence_app.command("export")
def evidence_export(
    model: str = typer.Argument(..., help="The model's name (as in the manifest), e.g. credit."),
    version: str = typer.Argument(
        ..., help="The candidate (staging) version a promotion judged; else read as the prod version it made."
    ),
    out: Path = typer.Option(..., "--out", help="The folder to write evidence.json, evidence.html, evidence.sig into."),
) -> None:
    """Write the evidence pack of MODEL VERSION: an HTML document for people, a JSON document for machines
    and a detached signature by the service key; the decision-log excerpt is proven up to a signed
    checkpoint (an existing one that covers it, else a new one in the checkpoint folder)."""
    from releasegate import bootstrap, records
    from releasegate.decisions import DecisionOutcome
    from releasegate.services.evidence_html import render
    from releasegate.services.evidence_pack import NoEvidence, assemble, write

    if out.exists() and not out.is_dir():
        exit_refused("--out", f"{out} is a file: give a folder (it is created when missing)", code=2)
    app = bootstrap.app()
    log = app.log
    sources = bootstrap.evidence_sources(app)
    key = sources.signing_key
    try:
        pack = assemble(sources, model, version)
    except NoEvidence as exc:
        rec = log.append(
            records.refusal(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"evidence export of {model} v{version} refused: {exc.rule}",
                subject=records.model_version_subject(model, version),
                actor="releasegate:evidence",
                details={"field": exc.field, "rule": exc.rule},
            )
        )
        exit_refused(exc, code=2, decision_id=rec.decision_id)
    try:
        write(pack, out, key, render)
    except OSError as exc:
        exit_refused("--out", f"{out} cannot be written ({exc.strerror or exc})", code=2)
    log_part = pack["decision_log"]
    console.print(
        f"evidence pack of {model} v{version} written to {out}: {len(pack['approvals'])} approvals, "
        f"{len(pack['monitoring'])} EOD verdicts, {len(log_part['excerpt'])} excerpt records proven up to "
        f"checkpoint #{log_part['checkpoint']['last_seq']}",
        soft_wrap=True,
    )
    console.print(
        f"service public key (pin it: evidence verify --public-key): {pack['service_key']['public_key']}",
        soft_wrap=True,
        highlight=False,
    )


@evidence_app.command("verify")
def evidence_verify(
    folder: Path = typer.Argument(..., help="The folder `evidence export` wrote."),
    public_key: str | None = typer.Option(
        None, "--public-key", help="The service key to trust (hex, or a file): default the key the pack names."
    ),
) -> None:
    """Re-check a pack offline: the signature, each approval's signature against the key or passkey its
    governed approvers config pinned, and every excerpt record's hash and link up to the signed checkpoint.
    The first line is the verdict: "evidence pack verified" (exit 0) or "evidence pack NOT verified:" and
    the first thing that does not verify (exit 1)."""
    from releasegate.cli.audit import _pinned_key
    from releasegate.policy.evidence_pack import HTML_FILE, JSON_FILE, SIGNATURE_FILE, verify_pack

    if not folder.is_dir():
        exit_refused("DIR", f"{folder} is not a folder (where `evidence export --out` wrote)", code=2)
    pinned = _pinned_key(public_key) if public_key is not None else None
    files = {n: (folder / n).read_bytes() for n in (JSON_FILE, HTML_FILE, SIGNATURE_FILE) if (folder / n).is_file()}
    findings, facts = verify_pack(files, pinned)
    if findings:
        err.print(f"[red]evidence pack NOT verified:[/red] {findings[0]}", soft_wrap=True, highlight=False)
        for f in findings[1:]:
            err.print(f"[red]also:[/red] {f}", soft_wrap=True, highlight=False)
        raise typer.Exit(1)
    console.print(f"evidence pack verified: {folder}", highlight=False)
    for fact in facts:
        console.print(fact, soft_wrap=True, highlight=False)
    if pinned is None:
        err.print(
            "[yellow]note:[/yellow] checked with the key the pack names; pin the service key with --public-key "
            "to know who signed it",
            soft_wrap=True,
        )

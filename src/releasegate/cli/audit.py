"""`releasegate audit verify`."""

from __future__ import annotations

import typer

from releasegate.cli._common import _log, console, err
from releasegate.decisions import DecisionKind

audit_app = typer.Typer(help="Audit the decision log.", no_args_is_help=True)


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

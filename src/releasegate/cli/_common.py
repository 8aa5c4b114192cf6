"""What every command shares: the consoles, the decision log, and ``exit_refused`` for refusals."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def _log():
    from releasegate import bootstrap

    return bootstrap.decision_log()


def _plain_log():
    """The log without the service seal: what `decisions add` writes is a note nothing trusts."""
    from releasegate import bootstrap
    from releasegate.store.decision_log import DecisionLog

    return DecisionLog(bootstrap.settings().resolved_database_url, clock=bootstrap.clock())


def _record_json(rec) -> dict:
    return rec.model_dump(mode="json")


def exit_refused(
    exc_or_field: BaseException | str, rule: str | None = None, *, code: int = 1, decision_id: str | None = None
) -> NoReturn:
    """Print ``refused: <field>: <rule>`` in red on stderr and exit with ``code``.

    The field names the input to fix and the rule says what would be accepted. Give a ``Refused`` (or
    any exception with ``field`` and ``rule``), a field and its rule, or one text (a plain exception's
    message, or a field alone when ``rule`` is None). When the refusal was recorded, its decision id
    (``decision_id``, or the exception's own ``decision_id``) is named after it."""
    recorded = decision_id is not None
    if isinstance(exc_or_field, BaseException):
        exc = exc_or_field
        if not recorded and hasattr(exc, "decision_id"):
            decision_id, recorded = exc.decision_id, True
        field = getattr(exc, "field", None)
        if field is None:
            text = str(exc)
        else:
            text = f"{field}: {exc.rule if rule is None else rule}"  # type: ignore[attr-defined]
    else:
        text = exc_or_field if rule is None else f"{exc_or_field}: {rule}"
    suffix = f" (recorded as decision {decision_id})" if recorded else ""
    err.print(f"[red]refused:[/red] {text}{suffix}")
    raise typer.Exit(code) from None

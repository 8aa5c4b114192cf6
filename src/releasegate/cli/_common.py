"""What every command shares: the consoles, the decision log, ``exit_refused`` for refusals, and the
readers of user input (``read_input``, ``parse_json``, ``parse_time``) that refuse bad input with a
``Refused`` naming the field, which the entry point prints as one line and exit 2 (``cli.RefusingGroup``)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from releasegate.errors import Refused

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
    err.print(f"[red]refused:[/red] {escape(text)}{suffix}", soft_wrap=True)  # one line, whatever its width
    raise typer.Exit(code) from None


def read_input(source: str | Path, field: str) -> str:
    """The text of a file the user named (``-``: stdin); ``Refused`` naming ``field`` when it cannot be
    read (no such file, a folder, no permission, not UTF-8 text)."""
    if str(source) == "-":
        return sys.stdin.read()
    path = Path(source)
    try:
        return path.read_text()
    except FileNotFoundError:
        raise Refused(field, f"{path}: no such file") from None
    except IsADirectoryError:
        raise Refused(field, f"{path} is a folder: give a file") from None
    except PermissionError:
        raise Refused(field, f"{path}: not readable (permission denied)") from None
    except UnicodeDecodeError:
        raise Refused(field, f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise Refused(field, f"{path}: cannot be read ({exc.strerror or exc})") from None


def parse_json(text: str, field: str) -> Any:
    """``text`` as JSON; ``Refused`` naming ``field``, the line and the column when it is not."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Refused(field, f"not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def parse_time(text: str, field: str) -> datetime:
    """An ISO 8601 time with its UTC offset (``Z`` allowed); ``Refused`` naming ``field`` when it does not
    parse or has no offset: a time without one means a different instant on each machine."""
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Refused(field, f"{text!r} is not an ISO 8601 time, e.g. 2026-11-23T08:00:00+01:00") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise Refused(field, f"{text!r} has no UTC offset: add one, e.g. {value}+01:00 or {value}Z")
    return parsed

"""releasegate's one exception tree, rooted at ``ReleasegateError``.

- ``Refused(field, rule, fix=None)``: input broke a rule. ``field`` names the input, ``rule`` says what
  would be accepted, ``fix`` (optional) what to do. The base of ``DecisionRefused``, ``ApprovalRefused``,
  ``RollbackRefused``, ``OverrideRefused``, ``GrantRefused``, ``KeyRefused`` and the others.
- ``ConfigError(path, field, rule, problems)``: a configuration file or block that cannot be accepted,
  every problem named.
- ``Unavailable``: something releasegate needs does not answer (the Prefect API, the MLflow registry).
- ``NotFound``: a thing asked for by name does not exist (a model version, a deployment).
- ``Failed``: a run that cannot go on (EOD without a champion, a backfill with dates it could not do).

Adapters map foreign errors (httpx, MLflow, SQLAlchemy) into this tree at their boundary; the CLI has
one handler that maps it to a one-line message and an exit code (``cli.RefusingGroup``). Pure: no I/O, no
Click (which stays in ``cli/``), importable anywhere.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ConfigError", "Failed", "NotFound", "Refused", "ReleasegateError", "Unavailable"]


class ReleasegateError(Exception):
    """The root: every error releasegate raises on purpose is one of these."""

    exit_code = 1


class Refused(ReleasegateError, ValueError):
    """``field``: which input broke a rule; ``rule``: the rule, phrased as what would be accepted;
    ``fix``: what to do, when the rule alone does not say it."""

    what = "refused"
    exit_code = 2

    def __init__(self, field: str, rule: str, fix: str | None = None):
        self.field = field
        self.rule = rule
        self.fix = fix
        super().__init__(f"{self.what}: {field}: {rule}" + (f" ({fix})" if fix else ""))


class ConfigError(ReleasegateError, ValueError):
    """A configuration file or block releasegate cannot accept: ``path`` (file or block), ``field``, ``rule``.

    ``problems`` holds every (field, rule) found; the message lists them all and says what to do. Not a
    ``Refused``: code that treats a refusal as the caller's bad input (an approval, an event) must not
    take a broken configuration for one."""

    exit_code = 2

    def __init__(self, path: str | Path, field: str | None, rule: str, problems: list[tuple[str, str]] | None = None):
        self.path, self.field, self.rule = str(path), field, rule
        self.problems = problems or [(field or "(file)", rule)]
        lines = [f"{f}: {r}" for f, r in self.problems]
        body = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  - " + "\n  - ".join(lines)
        super().__init__(f"invalid configuration {self.path}: {body}\nFix it and run the command again.")

    def format_message(self) -> str:
        return str(self)


class Unavailable(ReleasegateError, RuntimeError):
    """A service releasegate needs does not answer; ``what`` names it, the message says where it looked."""


class NotFound(ReleasegateError, LookupError):
    """A thing asked for by name does not exist where releasegate looked; the message names both."""


class Failed(ReleasegateError, RuntimeError):
    """A run that cannot go on; the message says why and what was done."""

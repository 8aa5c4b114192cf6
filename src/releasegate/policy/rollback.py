"""Rollback: which version to fall back to, and the record that documents it. Pure.

The target is the ``archive`` alias (the previous champion), and only if the decision log holds a
final promotion of exactly that prod version: an alias someone moved by hand is not "approved".
A canary rollback keeps the champion and only drops the ``challenger``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from releasegate.errors import Refused


class RollbackRefused(Refused):
    what = "rollback refused"


class RollbackPlan(BaseModel):
    method: Literal["full", "canary"]
    previous_version: str | None  # the champion before
    new_version: str | None  # the champion after
    drop_challenger: str | None = None


def plan_rollback(
    method: Literal["full", "canary"],
    champion: str | None,
    archive: str | None,
    challenger: str | None,
    approved_versions: set[str],
    expected_version: str | None = None,
) -> RollbackPlan:
    """Raises ``RollbackRefused`` naming the field and rule when there is nothing safe to do.

    ``expected_version``: the version a monitoring verdict judged; if the alias it is about has moved on
    since (another rollback, a new promotion), there is nothing left to undo."""
    current = challenger if method == "canary" else champion
    if expected_version is not None and current != expected_version:
        role = "challenger" if method == "canary" else "champion"
        raise RollbackRefused(
            "expected_version",
            f"v{expected_version} was judged, but the {role} is now {f'v{current}' if current else 'unset'}: "
            "nothing to roll back",
        )
    if method == "canary":
        if challenger is None:
            raise RollbackRefused("challenger", "no challenger alias: nothing to drop in a canary rollback")
        return RollbackPlan(
            method="canary", previous_version=champion, new_version=champion, drop_challenger=challenger
        )
    if archive is None:
        raise RollbackRefused("archive", "no archive alias: there is no approved version to roll back to")
    if champion is None:
        raise RollbackRefused("champion", "no champion alias: there is nothing to roll back from")
    if archive not in approved_versions:
        raise RollbackRefused(
            "archive", f"version {archive} has no final promotion decision in the decision log: not an approved version"
        )
    if archive == champion:
        raise RollbackRefused("archive", f"version {archive} is already the champion")
    return RollbackPlan(method="full", previous_version=champion, new_version=archive, drop_challenger=challenger)


class RollbackRecord(BaseModel):
    """Every field the seeds ask a rollback to document."""

    model_name: str
    method: Literal["full", "canary"]
    previous_version: str | None
    new_version: str | None
    dropped_challenger: str | None
    trigger: str
    root_cause: str
    requested_by: str
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    registry_seconds: float
    verification: dict[str, Any]
    verified: bool
    follow_up: str


def verification_ok(smoke: dict[str, Any], failure_rate: float, max_failure_rate: float = 0.01) -> bool:
    return bool(smoke.get("ok")) and failure_rate <= max_failure_rate

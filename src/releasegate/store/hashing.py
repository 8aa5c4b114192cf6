"""A stored record's hash, recomputed from its columns: the stored timestamp format, the record a row
holds, and the two ways to its ``record_hash`` (the exact pydantic path and the quick one straight from
the columns).

Shared by the log (``decision_log``: appends, ``verify``) and the chain walkers (``chain_walk``), which
import this module and not each other's internals. ``row`` is anything with the ``decisions`` table's
columns as attributes: an ORM ``DecisionRow``, a SQLAlchemy result row, a namespace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, overload

from releasegate.decisions import DecisionKind, DecisionRecord, record_hash

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@overload
def format_ts(value: datetime) -> str: ...
@overload
def format_ts(value: None) -> None: ...
@overload
def format_ts(value: datetime | None) -> str | None: ...
def format_ts(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime(TS_FORMAT)


@overload
def parse_ts(value: str) -> datetime: ...
@overload
def parse_ts(value: None) -> None: ...
@overload
def parse_ts(value: str | None) -> datetime | None: ...
def parse_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.strptime(value, TS_FORMAT).replace(tzinfo=UTC)


def record_of_row(row: Any) -> DecisionRecord:
    """The record a stored row holds."""
    return DecisionRecord(
        decision_id=row.decision_id,
        decision_timestamp=parse_ts(row.decision_timestamp),
        decision_kind=DecisionKind(row.decision_kind),
        decision_outcome=row.decision_outcome,
        decision_rationale=row.decision_rationale,
        subject=row.subject,
        actor=row.actor,
        tech_gate_report_ref=row.tech_gate_report_ref,
        pm_gate_ref=row.pm_gate_ref,
        risk_gate_ref=row.risk_gate_ref,
        joint_release_ack_ref=row.joint_release_ack_ref,
        rollback_plan_ref=row.rollback_plan_ref,
        exception_expiry=parse_ts(row.exception_expiry),
        details=row.details or {},
    )


def content_hash_for_row(row: Any) -> str:
    """The row's hash the exact way: its record rebuilt, then ``record_hash`` of its content."""
    return record_hash(row.seq, row.prev_hash, record_of_row(row).content())


_STORED_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_REFS = ("tech_gate_report_ref", "pm_gate_ref", "risk_gate_ref", "joint_release_ack_ref", "rollback_plan_ref")


def _json_ts(value: str | None) -> str | None:
    """A stored timestamp as ``DecisionRecord.content()`` spells it (pydantic drops a zero fraction)."""
    if value is None:
        return None
    if not _STORED_TS.fullmatch(value):
        raise ValueError("not in the stored format")
    return value[:-8] + "Z" if value.endswith(".000000Z") else value


# The stored columns of a record's hashed content (``DecisionRecord.content()`` minus ``details``).
CONTENT_COLUMNS = (
    "decision_id",
    "decision_timestamp",
    "decision_kind",
    "decision_outcome",
    "decision_rationale",
    "subject",
    "actor",
    *_REFS,
    "exception_expiry",
)


def content_from_columns(values: Sequence[Any], details: Any) -> dict[str, Any]:
    """A record's hashed content straight from its stored columns (``values``: the ``CONTENT_COLUMNS``
    in that order), without building the pydantic record; ValueError when a timestamp is not in the
    form ``append`` writes. Shared by ``verify``'s quick path and the range walkers (``chain_walk``)."""
    content = dict(zip(CONTENT_COLUMNS, values, strict=True))
    content["decision_timestamp"] = _json_ts(content["decision_timestamp"])
    content["exception_expiry"] = _json_ts(content["exception_expiry"])
    content["details"] = details or {}
    return content


def quick_hash_for_row(row: Any) -> str | None:
    """The record hash computed straight from the columns, without building the pydantic record: what
    makes ``verify`` of a million records several times faster. None when a column is not in the form
    ``append`` writes; ``verify`` then takes the exact path, and also for any row whose hash this does
    not reproduce, so a row is reported only when the exact computation disagrees too."""
    try:
        values = [getattr(row, c) for c in CONTENT_COLUMNS]
        return record_hash(row.seq, row.prev_hash, content_from_columns(values, row.details))
    except (ValueError, TypeError):
        return None

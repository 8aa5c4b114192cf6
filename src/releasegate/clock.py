"""The clock. Policy code takes ``now`` as an argument; the I/O edges get it from a ``Clock``.

Tests replace the clock, and nothing else, with a ``FixedClock``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: datetime):
        self._now = ensure_utc(start, "start")

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now = self._now + timedelta(**delta)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = ensure_utc(when, "when")


def ensure_utc(value: datetime, field: str = "timestamp") -> datetime:
    """Return ``value`` in UTC; a naive datetime is refused, never guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be timezone-aware (got naive {value.isoformat()})")
    return value.astimezone(UTC)

"""Change freezes and maintenance windows: once, daily or weekly, each in its own IANA timezone (pure).

The capacity gateway (``policy.capacity``) defers a run while a window covering its deployment is
active, until the window's end.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from releasegate.policy.triggers import AwareDatetime, IanaTimezone, NonBlank


class Window(BaseModel):
    """A change freeze or maintenance window, once or recurring, in its own timezone.

    ``once``: ``start`` and ``end`` (aware datetimes). ``daily``/``weekly``: ``start_time`` (local) and
    ``duration_minutes``; ``weekly`` also ``weekdays`` (0 = Monday). ``deployments`` empty = all.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: NonBlank
    kind: Literal["change_freeze", "maintenance"]
    timezone: IanaTimezone = "UTC"
    recurrence: Literal["once", "daily", "weekly"] = "once"
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    start_time: time | None = None
    duration_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] | None = None
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(default_factory=list)
    deployments: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shape(self) -> Window:
        if self.recurrence == "once":
            if self.start is None or self.end is None:
                raise ValueError(f"window {self.name!r}: a one-off window needs start and end")
            if self.end <= self.start:
                raise ValueError(f"window {self.name!r}: end must be after start")
        else:
            if self.start_time is None or self.duration_minutes is None:
                raise ValueError(
                    f"window {self.name!r}: a {self.recurrence} window needs start_time and duration_minutes"
                )
            if self.recurrence == "weekly" and not self.weekdays:
                raise ValueError(f"window {self.name!r}: a weekly window needs weekdays (0 = Monday)")
        return self

    def applies_to(self, deployment: str) -> bool:
        return not self.deployments or deployment in self.deployments

    def active_at(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The (start, end) in UTC of the occurrence covering ``now``, if any."""
        if self.recurrence == "once":
            assert self.start is not None and self.end is not None
            return (self.start.astimezone(UTC), self.end.astimezone(UTC)) if self.start <= now < self.end else None
        tz = ZoneInfo(self.timezone)
        local = now.astimezone(tz)
        span = timedelta(minutes=self.duration_minutes or 0)
        days_back = span.days + 1
        for back in range(days_back, -1, -1):
            day = local.date() - timedelta(days=back)
            if self.recurrence == "weekly" and day.weekday() not in self.weekdays:
                continue
            start = datetime.combine(day, self.start_time, tzinfo=tz)  # type: ignore[arg-type]
            end = start + span
            if start <= now < end:
                return start.astimezone(UTC), end.astimezone(UTC)
        return None

"""A model's business calendar: the dates its data exists for (``calendar:`` in the model manifest).

Weekdays Monday to Friday by default; ``weekdays`` names others (``mon`` .. ``sun``) and ``holidays``
lists dates without business (ISO dates, e.g. ``2026-12-25``). Backfill walks only the model's business
dates, EOD scores only on them, and the drift gate looks back over them for the newest inputs. A date
outside the calendar is named with its reason (``why_not``); a business date without data is a
different outcome, decided where the data is read. Pure: no I/O, no clock.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class BusinessCalendar(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weekdays: list[str] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    holidays: list[date] = Field(default_factory=list)

    @field_validator("weekdays")
    @classmethod
    def _known_weekdays(cls, v: list[str]) -> list[str]:
        full = [n.lower() for n in DAY_NAMES]
        names = [d.strip().lower()[:3] for d in v]
        unknown = [d for d in v if d.strip().lower() not in (*WEEKDAYS, *full)]
        if unknown:
            raise ValueError(f"weekdays: unknown day(s) {', '.join(map(repr, unknown))} (use {', '.join(WEEKDAYS)})")
        if not names:
            raise ValueError("weekdays: name at least one business weekday")
        if len(set(names)) != len(names):
            raise ValueError("weekdays: a day is named twice")
        return names

    @model_validator(mode="after")
    def _unique_holidays(self) -> Self:
        if len(set(self.holidays)) != len(self.holidays):
            raise ValueError("holidays: a date is listed twice")
        return self

    def why_not(self, day: date) -> str | None:
        """None for a business date, else why it is not one (``Saturday``, ``holiday``)."""
        if WEEKDAYS[day.weekday()] not in self.weekdays:
            return f"{DAY_NAMES[day.weekday()]}: not a business weekday"
        if day in self.holidays:
            return "holiday (calendar.holidays of the model manifest)"
        return None

    def is_business_day(self, day: date) -> bool:
        return self.why_not(day) is None

    def business_days(self, start: date, end: date) -> list[date]:
        """The business dates from ``start`` to ``end``, both included, in order."""
        return [d for d in days_between(start, end) if self.is_business_day(d)]

    def on_or_before(self, day: date, limit: int = 366) -> date | None:
        """The newest business date on or before ``day`` (None if none within ``limit`` days)."""
        for back in range(limit + 1):
            d = day - timedelta(days=back)
            if self.is_business_day(d):
                return d
        return None

    def previous(self, day: date) -> date | None:
        """The newest business date strictly before ``day``."""
        return self.on_or_before(day - timedelta(days=1))

    def looking_back(self, day: date, count: int) -> list[date]:
        """``day`` when it is a business date, then earlier business dates: ``count + 1`` at most, newest
        first (where to look for a model's newest inputs)."""
        out: list[date] = []
        d = self.on_or_before(day)
        while d is not None and len(out) <= count:
            out.append(d)
            d = self.previous(d)
        return out


def days_between(start: date, end: date) -> list[date]:
    """Every calendar date from ``start`` to ``end``, both included."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


WEEKDAYS_ONLY = BusinessCalendar()

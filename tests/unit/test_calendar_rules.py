"""Business calendars (``policy.calendar``) and their place in the model manifest: pure rules."""

from datetime import date

import pytest
from pydantic import ValidationError

from releasegate.policy.calendar import WEEKDAYS_ONLY, BusinessCalendar, days_between
from releasegate.policy.models import ModelManifest

MON, FRI, SAT, SUN = date(2026, 11, 16), date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)


def test_weekdays_by_default_the_issue_range_has_ten_business_dates():
    days = WEEKDAYS_ONLY.business_days(date(2026, 11, 16), date(2026, 11, 27))
    assert len(days) == 10 and SAT not in days and SUN not in days
    assert days[0] == MON and days[-1] == date(2026, 11, 27)
    assert WEEKDAYS_ONLY.why_not(SAT) == "Saturday: not a business weekday"
    assert WEEKDAYS_ONLY.why_not(SUN).startswith("Sunday") and WEEKDAYS_ONLY.why_not(FRI) is None


def test_holidays_are_not_business_dates_and_say_so():
    cal = BusinessCalendar(holidays=[date(2026, 11, 26)])
    assert cal.why_not(date(2026, 11, 26)).startswith("holiday")
    assert date(2026, 11, 26) not in cal.business_days(MON, date(2026, 11, 27))
    assert len(cal.business_days(MON, date(2026, 11, 27))) == 9


def test_newest_business_date_on_or_before_and_looking_back():
    cal = BusinessCalendar(holidays=[FRI])
    assert cal.on_or_before(SUN) == date(2026, 11, 19)  # Sat, Sun and the Friday holiday skipped
    assert cal.on_or_before(date(2026, 11, 19)) == date(2026, 11, 19)
    assert cal.previous(date(2026, 11, 23)) == date(2026, 11, 19)
    assert cal.looking_back(SUN, 2) == [date(2026, 11, 19), date(2026, 11, 18), date(2026, 11, 17)]
    assert WEEKDAYS_ONLY.looking_back(date(2026, 11, 23), 0) == [date(2026, 11, 23)]


def test_other_weekdays_by_name_a_seven_day_calendar_has_no_weekend():
    every = BusinessCalendar(weekdays=["mon", "Tue", "wednesday", "thu", "fri", "sat", "sun"])
    assert every.weekdays == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert every.business_days(MON, SUN) == days_between(MON, SUN)
    sun_thu = BusinessCalendar(weekdays=["sun", "mon", "tue", "wed", "thu"])
    assert sun_thu.is_business_day(SUN) and not sun_thu.is_business_day(FRI)


@pytest.mark.parametrize(
    ("calendar", "says"),
    [
        ({"weekdays": ["mon", "funday"]}, "unknown day(s) 'funday'"),
        ({"weekdays": []}, "at least one"),
        ({"weekdays": ["mon", "monday"]}, "named twice"),
        ({"holidays": ["2026-12-25", "2026-12-25"]}, "listed twice"),
        ({"holidays": ["christmas"]}, "holidays"),
        ({"weekend": ["sat"]}, "weekend"),
    ],
)
def test_a_bad_calendar_in_the_manifest_is_refused_naming_the_field(calendar, says):
    doc = {"models": [{"name": "m", "primary_kpi": {"metric": "f1"}, "calendar": calendar}]}
    with pytest.raises(ValidationError) as exc:
        ModelManifest.model_validate(doc)
    assert "calendar" in str(exc.value) and says in str(exc.value)


def test_the_manifest_calendar_defaults_to_weekdays_and_reads_holidays():
    doc = {
        "models": [
            {"name": "a", "primary_kpi": {"metric": "f1"}},
            {"name": "b", "primary_kpi": {"metric": "f1"}, "calendar": {"holidays": ["2026-12-25"]}},
        ]
    }
    m = ModelManifest.model_validate(doc)
    assert m.require("a").calendar == WEEKDAYS_ONLY
    assert m.require("b").calendar.why_not(date(2026, 12, 25)).startswith("holiday")
    assert m.require("b").calendar.is_business_day(date(2026, 12, 24))

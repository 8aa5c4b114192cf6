"""DST and catch-up rules: an EOD cron in Europe/Zurich across both DST Sundays runs exactly once per
business day under each DST rule (or is skipped, with a reason, where the rule says so)."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from pydantic import ValidationError

from releasegate.policy.runtime_policy import check_deployments
from releasegate.policy.schedule_rules import (
    CatchUpMode,
    CatchUpPolicy,
    DstRule,
    catch_up_verdict,
    dst_verdict,
    occurrence_of,
)

ZRH = "Europe/Zurich"
Z = ZoneInfo(ZRH)


def prefect_like_fires(cron: str, start: datetime, end: datetime, duplicate_repeated_hour: bool) -> list[datetime]:
    """What a scheduler may make of the cron: each wall time read once (for a skipped wall time, with the
    offset after the jump, as Prefect 3.8 does: an hour early) and, like older Prefect versions, the
    repeated hour twice when ``duplicate_repeated_hour``."""
    out = []
    for local in CronSim(cron, start.astimezone(Z).replace(tzinfo=None)):
        if local >= end.astimezone(Z).replace(tzinfo=None):
            break
        first = local.replace(tzinfo=Z, fold=0).astimezone(UTC)
        second = local.replace(tzinfo=Z, fold=1).astimezone(UTC)
        if first == second:
            out.append(first)
        elif second < first:  # a skipped wall time: Prefect reads it with the new offset
            out.append(second)
        else:  # a repeated wall time
            out.append(first)
            if duplicate_repeated_hour:
                out.append(second)
    return out


def play(cron: str, rule: DstRule, fires: list[datetime]) -> tuple[list[datetime], list[str]]:
    """Each fired run goes through the rule at its fire time; a moved run comes back at its new time;
    each occurrence runs once (the adapter's claim). Returns the start times and the recorded reasons."""
    started, reasons, claimed = [], [], set()
    for fired in fires:
        now = fired
        for _ in range(3):
            v = dst_verdict(cron, ZRH, rule, fired, now)
            if v.action == "move":
                reasons.append(v.reason)
                now = v.at
                continue
            break
        if v.action == "skip":
            reasons.append(v.reason)
            continue
        key = v.occurrence.key if v.occurrence else fired.isoformat()
        if key in claimed:
            reasons.append(f"DUPLICATE_OCCURRENCE: {key}")
            continue
        claimed.add(key)
        started.append(now)
    return started, reasons


@pytest.mark.parametrize("cron", ["30 2 * * *", "0 18 * * 1-5"])
@pytest.mark.parametrize("rule", list(DstRule))
@pytest.mark.parametrize("duplicates", [False, True])
@pytest.mark.parametrize("month", [3, 10])
def test_once_per_business_day_across_the_dst_sundays(cron, rule, duplicates, month):
    start = datetime(2026, month, 24, tzinfo=UTC)
    end = start + timedelta(days=10)  # covers the last Sunday (29 March / 25 October 2026)
    started, reasons = play(cron, rule, prefect_like_fires(cron, start, end, duplicates))
    per_day = Counter(t.astimezone(Z).date() for t in started)
    limit = end.astimezone(Z).replace(tzinfo=None)
    expected_days = {
        d.date() for d in takewhile(lambda d: d < limit, CronSim(cron, start.astimezone(Z).replace(tzinfo=None)))
    }
    sunday = datetime(2026, month, 29 if month == 3 else 25).date()
    skipped = rule is DstRule.skip and cron.startswith("30 2")
    assert set(per_day) == expected_days - ({sunday} if skipped else set())
    assert all(n == 1 for n in per_day.values()), per_day
    if skipped:
        assert any(r.startswith("DST_SKIPPED") and "2026-" in r for r in reasons)
    if cron.startswith("0 18"):  # a time DST never touches: no rule does anything
        assert not reasons


def test_where_the_missing_and_repeated_runs_land():
    missing_fired = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # Prefect 3.8's reading of 02:30 on 29 March
    occ = occurrence_of("30 2 * * *", ZRH, missing_fired)
    assert occ is not None and occ.kind == "missing" and occ.local == datetime(2026, 3, 29, 2, 30)
    first = dst_verdict("30 2 * * *", ZRH, DstRule.first, missing_fired, missing_fired)
    shifted = dst_verdict("30 2 * * *", ZRH, DstRule.shifted, missing_fired, missing_fired)
    assert first.action == shifted.action == "move"
    assert first.at.astimezone(Z).strftime("%H:%M%z") == "03:00+0200"  # when the clocks jump
    assert shifted.at.astimezone(Z).strftime("%H:%M%z") == "03:30+0200"  # the same wall time, an hour on
    rep = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 summer time, the first pass
    assert dst_verdict("30 2 * * *", ZRH, DstRule.first, rep, rep).action == "run"
    moved = dst_verdict("30 2 * * *", ZRH, DstRule.shifted, rep, rep)
    assert moved.action == "move" and moved.at.astimezone(Z).strftime("%H:%M%z") == "02:30+0100"
    back = dst_verdict("30 2 * * *", ZRH, DstRule.shifted, rep, moved.at)  # it came back: it runs
    assert back.action == "run"
    manual = dst_verdict("30 2 * * *", ZRH, DstRule.first, datetime(2026, 10, 25, 9, 17, tzinfo=UTC), rep)
    assert manual.action == "run" and manual.occurrence is None


def test_catch_up_rules():
    five_late = [4, 3, 2, 1, 0]  # later runs already due, for the oldest .. the newest of 5 late runs
    latest = CatchUpPolicy(mode=CatchUpMode.latest_only)
    assert [catch_up_verdict(latest, n).action for n in five_late] == ["skip"] * 4 + ["run"]
    two = CatchUpPolicy(mode=CatchUpMode.at_most, max_runs=2)
    assert [catch_up_verdict(two, n).action for n in five_late] == ["skip"] * 3 + ["run"] * 2
    assert all(catch_up_verdict(CatchUpPolicy(), n).action == "run" for n in five_late)
    assert "latest_only" in catch_up_verdict(latest, 3).reason
    with pytest.raises(ValidationError, match="max_runs"):
        CatchUpPolicy(mode=CatchUpMode.at_most)
    with pytest.raises(ValidationError, match="max_runs applies only"):
        CatchUpPolicy(mode=CatchUpMode.latest_only, max_runs=3)


def test_policy_check_names_bad_schedule_rules():
    base = {
        "name": "eod",
        "concurrency_limit": 1,
        "schedules": [{"cron": "30 2 * * *", "timezone": ZRH}],
        "runtime_policy": {
            "retries": 0,
            "retry_delay_seconds": 0,
            "timeout_seconds": 60,
            "late_run": {"mode": "run_late"},
        },
    }
    ok, bad = check_deployments({"deployments": [base]})
    assert ok == ["eod"] and not bad
    wrong = {**base, "runtime_policy": {**base["runtime_policy"], "dst": "twice", "catch_up": {"mode": "at_most"}}}
    _, bad = check_deployments({"deployments": [wrong]})
    text = str(bad[0])
    assert "dst" in text and "first" in text and "catch_up" in text and "max_runs" in text

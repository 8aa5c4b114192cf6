"""The weekly operational-risk review: the scheduled-start KPI (>= 99 %, below 98 % a P2 incident), the
frequently deferred deployments, and the use case that records it once per week on the real decision log."""

from datetime import UTC, datetime, timedelta

import pytest

from releasegate.clock import FixedClock
from releasegate.decisions import DecisionKind, DecisionOutcome
from releasegate.policy.operational_review import (
    DeferralFact,
    RunFact,
    last_complete_week,
    review,
    week_of,
)
from releasegate.services.operational_review import record_weekly_review, subject_for
from releasegate.store.decision_log import DecisionLog

MONDAY = datetime(2026, 11, 30, tzinfo=UTC)  # the week under review: 2026-11-30 .. 2026-12-07
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def runs(deployment: str, total: int, not_started: int, first: int = 0) -> list[RunFact]:
    return [
        RunFact(
            flow_run_id=f"{deployment}-{first + i}",
            deployment=deployment,
            due=MONDAY + timedelta(hours=i % 160),
            started=i >= not_started,
        )
        for i in range(total)
    ]


def deferral(deployment: str, i: int, minutes: float, reason: str = "PRIORITY_CONFLICT") -> DeferralFact:
    at = MONDAY + timedelta(days=1, minutes=i)
    return DeferralFact(
        flow_run_id=f"{deployment}-{i}",
        deployment=deployment,
        reason_code=reason,
        first_deferred_at=at,
        closed_at=at + timedelta(minutes=minutes),
    )


def test_weeks_run_monday_to_monday_in_utc():
    assert week_of(datetime(2026, 12, 6, 23, 59, tzinfo=UTC)) == (MONDAY, MONDAY + timedelta(days=7))
    assert week_of(MONDAY) == (MONDAY, MONDAY + timedelta(days=7))
    assert last_complete_week(NOW) == (MONDAY, MONDAY + timedelta(days=7))
    assert last_complete_week(MONDAY + timedelta(days=7)) == (MONDAY, MONDAY + timedelta(days=7))


@pytest.mark.parametrize(
    ("not_started", "status"),
    [(0, "ok"), (2, "ok"), (3, "missed"), (4, "missed"), (5, "incident"), (40, "incident")],
)
def test_started_share_against_99_and_98_percent(not_started, status):
    """200 runs: 198 started is 99 % (met), 196 is 98 % (missed, no incident), 195 is below 98 %."""
    rev = review(MONDAY, runs("eod-scoring", 200, not_started), [], 30, NOW)
    assert (rev.scheduled, rev.started) == (200, 200 - not_started)
    assert rev.status == status
    assert (rev.severity == "P2") == (status == "incident")
    assert len(rev.not_started) == min(not_started, 50)


def test_runs_and_deferrals_outside_the_week_are_not_counted():
    before = [RunFact(flow_run_id="old", deployment="backfill", due=MONDAY - timedelta(seconds=1), started=False)]
    after = [RunFact(flow_run_id="new", deployment="backfill", due=MONDAY + timedelta(days=7), started=False)]
    late = deferral("backfill", 0, 90).model_copy(update={"first_deferred_at": MONDAY + timedelta(days=8)})
    rev = review(MONDAY, before + runs("backfill", 10, 0) + after, [late], 30, NOW)
    assert (rev.scheduled, rev.started, rev.status) == (10, 10, "ok")
    assert rev.rows[0].deferred_runs == 0 and rev.frequent == []


def test_frequent_deferrals_by_share_or_by_any_past_the_sla():
    week = runs("backfill", 20, 0) + runs("eod-scoring", 20, 0) + runs("report", 100, 0)
    deferrals = (
        [deferral("backfill", i, 5, "QUEUE_LIMIT") for i in range(3)]  # 3 of 20: 15 %, frequent
        + [deferral("eod-scoring", 0, 45)]  # one, but past the 30-min SLA: frequent
        + [deferral("report", i, 5) for i in range(3)]  # 3 of 100: 3 %, not frequent
    )
    rev = review(MONDAY, week, deferrals, 30, NOW)
    assert sorted(rev.frequent) == ["backfill", "eod-scoring"]
    row = {r.deployment: r for r in rev.rows}
    assert row["backfill"].reasons == {"QUEUE_LIMIT": 3} and row["backfill"].deferred_share == pytest.approx(0.15)
    assert row["eod-scoring"].over_sla == 1 and row["eod-scoring"].open_minutes_p95 == pytest.approx(45)
    assert row["report"].frequent is False
    assert rev.rows[0].frequent and not rev.rows[-1].frequent  # the risks first
    md = rev.markdown()
    assert "| backfill | 20 | 20 | 3 | 15.0 % |" in md and "FREQUENT" in md


def test_an_open_deferral_counts_until_now():
    d = deferral("backfill", 0, 0).model_copy(update={"closed_at": None})
    rev = review(MONDAY, runs("backfill", 5, 0), [d], 30, d.first_deferred_at + timedelta(minutes=61))
    assert rev.rows[0].over_sla == 1 and rev.rows[0].open_minutes_p95 == pytest.approx(61)


class Sink:
    def __init__(self, fail: bool = False):
        self.items: list = []
        self.fail = fail

    def publish(self, markdown, key, description):
        if self.fail:
            raise OSError("artifact store down")
        self.items.append((key, markdown))

    def emit(self, **kwargs):
        self.items.append(kwargs)
        return None


def test_the_week_is_recorded_once_with_a_p2_incident_below_98_percent(sqlite_url):
    log = DecisionLog(sqlite_url, clock=FixedClock(NOW))
    asked = []

    def facts(start, end):
        asked.append((start, end))
        return runs("eod-scoring", 100, 4) + runs("backfill", 50, 0, first=100), [deferral("backfill", 1, 50)]

    sink = Sink()
    out = record_weekly_review(log, facts, sink.publish, sink.emit, "releasegate", 30, NOW)
    assert asked == [(MONDAY, MONDAY + timedelta(days=7))]
    assert out is not None and out.review.status == "incident"  # 146 of 150 started: 97.3 %
    assert out.record.decision_kind == DecisionKind.operational_report
    assert out.record.decision_outcome == DecisionOutcome.reject
    assert out.record.subject == subject_for("releasegate", MONDAY) == "operations:releasegate:week:2026-11-30"
    assert out.record.details["frequently_deferred"] == ["backfill"]
    assert out.incident is not None and out.incident.details["severity"] == "P2"
    assert out.incident.details["incident_kind"] == "scheduled_start_kpi"
    assert sorted(out.incident.details["not_started"]) == [f"eod-scoring-{i}" for i in range(4)]
    [(key, md)] = [i for i in sink.items if isinstance(i, tuple)]
    assert key == "releasegate-operations-releasegate" and "week of 2026-11-30" in md
    [event] = [i for i in sink.items if isinstance(i, dict)]
    assert event["event"] == "releasegate.incident.opened" and event["payload"]["severity"] == "P2"
    # asked again (the sweeper asks every minute): nothing read, nothing recorded
    later = NOW + timedelta(hours=1)
    assert record_weekly_review(log, facts, sink.publish, sink.emit, "releasegate", 30, later) is None
    assert len(asked) == 1
    assert len(log.query(kind=DecisionKind.operational_report)) == 1
    assert len(log.query(kind=DecisionKind.incident)) == 1


def test_a_week_that_met_the_target_is_recorded_without_an_incident_even_if_the_artifact_fails(sqlite_url):
    log = DecisionLog(sqlite_url, clock=FixedClock(NOW))
    out = record_weekly_review(
        log, lambda s, e: (runs("eod-scoring", 100, 1), []), Sink(fail=True).publish, Sink().emit, "pool", 30, NOW
    )
    assert out is not None and out.review.status == "ok" and out.incident is None
    assert out.record.decision_outcome == DecisionOutcome.accept
    assert log.query(kind=DecisionKind.incident) == []

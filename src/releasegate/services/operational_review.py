"""The weekly operational-risk review as a use case: once per ended week and work pool, read the week's
runs and deferrals, record an ``operational_report`` decision, publish the review where people look (a
Prefect artifact), and open a P2 incident when fewer than 98 % of the scheduled runs started, escalated
like every other incident (event ``releasegate.incident.opened``, which the on-call automation notifies).

Collaborators are passed in: the decision log, a reader of the week's facts, a publisher and an event
emitter. Recorded once: a week already reviewed is not reviewed again (the sweeper asks every minute).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from releasegate import records
from releasegate.decisions import DecisionKind, DecisionOutcome, DecisionRecord, NewDecision
from releasegate.policy.operational_review import (
    DeferralFact,
    RunFact,
    WeeklyReview,
    last_complete_week,
    review,
    week_of,
)

_logger = logging.getLogger(__name__)
ACTOR = "releasegate:operational-review"
INCIDENT_EVENT = "releasegate.incident.opened"


class Log(Protocol):
    def append(self, new: NewDecision, now: datetime | None = None) -> DecisionRecord: ...

    def query(self, *, kind: Any = ..., subject: str | None = ..., limit: int | None = ...) -> list[DecisionRecord]: ...


FactReader = Callable[[datetime, datetime], tuple[list[RunFact], list[DeferralFact]]]
Publisher = Callable[[str, str, str], None]  # markdown, artifact key, description
Emitter = Callable[..., Any]


@dataclass
class ReviewOutcome:
    review: WeeklyReview
    record: DecisionRecord
    incident: DecisionRecord | None


def subject_for(pool: str, week_start: datetime) -> str:
    return records.operations_week_subject(pool, week_start)


def review_week(read_facts: FactReader, sla_minutes: int, day: datetime, now: datetime) -> WeeklyReview:
    """The review of the week holding ``day``, not recorded (``releasegate report --week``)."""
    start, end = week_of(day)
    runs, deferrals = read_facts(start, end)
    return review(start, runs, deferrals, sla_minutes, now)


def record_weekly_review(
    log: Log,
    read_facts: FactReader,
    publish: Publisher,
    emit: Emitter,
    pool: str,
    sla_minutes: int,
    now: datetime,
) -> ReviewOutcome | None:
    """Review the newest ended week if nobody has: None when it is recorded already."""
    start, end = last_complete_week(now)
    subject = subject_for(pool, start)
    if log.query(kind=DecisionKind.operational_report, subject=subject, limit=1):
        return None
    runs, deferrals = read_facts(start, end)
    rev = review(start, runs, deferrals, sla_minutes, now)
    key = re.sub(r"[^a-z0-9-]+", "-", f"releasegate-operations-{pool}".lower())
    try:
        publish(rev.markdown(), key, f"Operational-risk review, week of {start:%Y-%m-%d}")
    except Exception as exc:  # the artifact is a view; the record below is the report of record
        _logger.warning("operational review: could not publish the artifact: %s", exc)
    record = log.append(
        records.operational_report(
            decision_outcome=DecisionOutcome.accept if rev.status in ("ok", "no_runs") else DecisionOutcome.reject,
            decision_rationale=rev.explanation(),
            subject=subject,
            actor=ACTOR,
            details={
                "week_start": f"{start:%Y-%m-%d}",
                "status": rev.status,
                "scheduled_runs": rev.scheduled,
                "started_runs": rev.started,
                "started_share": rev.started_share,
                "frequently_deferred": rev.frequent,
                "pool": pool,
                "deployments": [r.model_dump() for r in rev.rows],
            },
        ),
        now=now,
    )
    incident = None
    if rev.status == "incident":
        payload = {
            "severity": "P2",
            "reason": "scheduled runs started below 98 % in the week",
            "week_start": f"{start:%Y-%m-%d}",
            "started_share": rev.started_share,
            "scheduled_runs": rev.scheduled,
            "started_runs": rev.started,
            "report_decision_id": record.decision_id,
        }
        event = None
        try:
            event = emit(
                event=INCIDENT_EVENT,
                resource={
                    "prefect.resource.id": f"releasegate.pool.{pool}",
                    "prefect.resource.name": f"work pool {pool}",
                    "releasegate.deployment": f"work pool {pool} (scheduled runs)",
                },
                payload=payload,
            )
        except Exception as exc:  # recorded below either way; the record is what the audit reads
            _logger.error("operational review: could not emit the P2 incident event: %s", exc)
        incident = log.append(
            records.incident(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"P2 incident: {rev.explanation()}",
                subject=subject,
                actor=ACTOR,
                details={
                    **payload,
                    "incident_for": f"scheduled_start_kpi:{pool}:{start:%Y-%m-%d}",
                    "incident_kind": "scheduled_start_kpi",
                    "not_started": rev.not_started,
                    "event_id": str(event.id) if event is not None else None,
                },
            ),
            now=now,
        )
    return ReviewOutcome(review=rev, record=record, incident=incident)

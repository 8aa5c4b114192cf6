"""The weekly operational-risk review (pure): the seed's scheduling KPI, scheduled runs started, per ISO week
(>= 99 % met, below 98 % a P2 incident), and the deployments whose runs were deferred often.

A week is Monday 00:00 UTC to the next Monday 00:00 UTC. A run counts as scheduled in the week its expected
start falls in, and as started when a worker started it (whenever that was). A run still deferred or
waiting behind a cap when the week is reviewed counts as not started: the KPI is what people saw.

A deployment is *frequently deferred* in a week when at least ``FREQUENT_SHARE`` of its runs were deferred
(and at least ``FREQUENT_MIN`` of them), or when any of its deferrals stayed open past the SLA: either is
an operational risk to report, whatever the KPI says. ``now`` is passed in.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from releasegate.policy.kpis import percentile

TARGET_STARTED = 0.99  # the seed's target: >= 99 % of scheduled runs started per week
INCIDENT_BELOW = 0.98  # below this a P2 incident is opened
FREQUENT_SHARE = 0.10
FREQUENT_MIN = 3

Status = Literal["ok", "missed", "incident", "no_runs"]


class RunFact(BaseModel):
    """One run of a governed deployment whose expected start fell in the week."""

    model_config = ConfigDict(frozen=True)
    flow_run_id: str
    deployment: str
    due: datetime
    started: bool


class DeferralFact(BaseModel):
    """One deferral (the gateway's or a cap wait) opened in the week."""

    model_config = ConfigDict(frozen=True)
    flow_run_id: str
    deployment: str
    reason_code: str
    first_deferred_at: datetime
    closed_at: datetime | None


class DeploymentRow(BaseModel):
    model_config = ConfigDict(frozen=True)
    deployment: str
    scheduled: int
    started: int
    deferred_runs: int
    deferred_share: float | None
    open_minutes_p95: float | None
    over_sla: int
    reasons: dict[str, int]
    frequent: bool


class WeeklyReview(BaseModel):
    model_config = ConfigDict(frozen=True)
    week_start: datetime
    week_end: datetime
    scheduled: int
    started: int
    started_share: float | None
    status: Status
    sla_minutes: int
    rows: list[DeploymentRow]
    not_started: list[str]  # flow run ids, for the incident's evidence (first 50)

    @property
    def frequent(self) -> list[str]:
        return [r.deployment for r in self.rows if r.frequent]

    @property
    def severity(self) -> str | None:
        return "P2" if self.status == "incident" else None

    def explanation(self) -> str:
        share = "no scheduled runs" if self.started_share is None else f"{100 * self.started_share:.1f} %"
        head = (
            f"week of {self.week_start:%Y-%m-%d}: scheduled runs started {share} ({self.started}/{self.scheduled}); "
            f"target >= {100 * TARGET_STARTED:.0f} %"
        )
        if self.status == "incident":
            head += f", below {100 * INCIDENT_BELOW:.0f} %: P2 incident"
        elif self.status == "missed":
            head += ": missed"
        freq = self.frequent
        tail = f"; frequently deferred: {', '.join(freq)}" if freq else "; no deployment frequently deferred"
        return head + tail

    def markdown(self) -> str:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:.1f} %"

        lines = [
            f"# Operational-risk review, week of {self.week_start:%Y-%m-%d} (UTC)",
            "",
            f"**Scheduled runs started: {pct(self.started_share)}** ({self.started}/{self.scheduled}); "
            f"target ≥ {100 * TARGET_STARTED:.0f} %, below {100 * INCIDENT_BELOW:.0f} % a P2 incident. "
            f"Status: **{self.status}**.",
            "",
            f"Frequently deferred (≥ {100 * FREQUENT_SHARE:.0f} % of runs and ≥ {FREQUENT_MIN}, or any past the "
            f"{self.sla_minutes}-minute SLA): {', '.join(self.frequent) or 'none'}.",
            "",
            "| deployment | scheduled | started | deferred runs | share | open p95 (min) | over SLA | reasons | risk |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            p95 = "n/a" if r.open_minutes_p95 is None else f"{r.open_minutes_p95:.1f}"
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(r.reasons.items())) or "-"
            lines.append(
                f"| {r.deployment} | {r.scheduled} | {r.started} | {r.deferred_runs} | {pct(r.deferred_share)} "
                f"| {p95} | {r.over_sla} | {reasons} | {'FREQUENT' if r.frequent else ''} |"
            )
        return "\n".join(lines)


def week_of(day: date | datetime) -> tuple[datetime, datetime]:
    """The ISO week (Monday 00:00 UTC, next Monday 00:00 UTC) that holds ``day`` (a UTC date or instant)."""
    d = day.astimezone(UTC).date() if isinstance(day, datetime) else day
    start = datetime.combine(d - timedelta(days=d.weekday()), time(0), tzinfo=UTC)
    return start, start + timedelta(days=7)


def last_complete_week(now: datetime) -> tuple[datetime, datetime]:
    """The newest week that has ended by ``now``."""
    start, _ = week_of(now)
    return start - timedelta(days=7), start


def review(
    week_start: datetime,
    runs: list[RunFact],
    deferrals: list[DeferralFact],
    sla_minutes: int,
    now: datetime,
) -> WeeklyReview:
    """The week's review from its runs (those due in the week) and deferrals (those opened in it)."""
    start, end = week_of(week_start)
    runs = [r for r in runs if start <= r.due < end]
    deferrals = [d for d in deferrals if start <= d.first_deferred_at < end]
    names = sorted({r.deployment for r in runs} | {d.deployment for d in deferrals})
    rows = []
    for name in names:
        mine = [r for r in runs if r.deployment == name]
        held = [d for d in deferrals if d.deployment == name]
        deferred_runs = len({d.flow_run_id for d in held})
        minutes = [((d.closed_at or now) - d.first_deferred_at) / timedelta(minutes=1) for d in held]
        over = sum(1 for m in minutes if m > sla_minutes)
        share = deferred_runs / len(mine) if mine else None
        frequent = over > 0 or (deferred_runs >= FREQUENT_MIN and (share is None or share >= FREQUENT_SHARE))
        rows.append(
            DeploymentRow(
                deployment=name,
                scheduled=len(mine),
                started=sum(1 for r in mine if r.started),
                deferred_runs=deferred_runs,
                deferred_share=share,
                open_minutes_p95=percentile(minutes, 95),
                over_sla=over,
                reasons=dict(Counter(d.reason_code for d in held)),
                frequent=frequent,
            )
        )
    scheduled, started = len(runs), sum(1 for r in runs if r.started)
    share = started / scheduled if scheduled else None
    status: Status
    if share is None:
        status = "no_runs"
    elif share >= TARGET_STARTED:
        status = "ok"
    elif share >= INCIDENT_BELOW:
        status = "missed"
    else:
        status = "incident"
    rows.sort(key=lambda r: (not r.frequent, -r.deferred_runs, r.deployment))
    return WeeklyReview(
        week_start=start,
        week_end=end,
        scheduled=scheduled,
        started=started,
        started_share=share,
        status=status,
        sla_minutes=sla_minutes,
        rows=rows,
        not_started=sorted(r.flow_run_id for r in runs if not r.started)[:50],
    )

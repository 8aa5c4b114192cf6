"""What the console's model pages show (``console.models``), as plain values: the inventory row of a
governed model, its decisions as a timeline, its EOD monitoring per business date, its champion
history. ``services.model_pages`` builds them from the decision log and the manifest; the console
draws them. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class LastPromotion:
    at: datetime
    version: str  # the candidate (staging) version the promotion judged
    outcome: str  # final (promoted) | hold | reject
    prod_version: str | None = None  # the prod version a final promotion made champion


@dataclass(frozen=True)
class ModelRow:
    """One governed model in the inventory."""

    name: str
    owners: list[str]
    risk_tier: str
    criticality: str
    champion: str | None  # the prod version the log says is champion (final promotion or rollback)
    champion_since: datetime | None
    last_promotion: LastPromotion | None
    open_holds: int  # held promotions nobody acknowledged or escalated, none promoted since
    open_exceptions: int  # unexpired exceptions granted for one of its versions
    next_eod: datetime | None  # the next run of its EOD schedule (UTC); None: no active schedule
    eod_schedule: str | None  # "cron (timezone)" as the manifest declares it
    halted: str | None  # why it is halted (the halt switch); None: not halted
    in_manifest: bool = True


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # promotion | approval | rollback | retrain | exception | monitoring | incident | ...
    title: str  # a short line: "promoted v4 -> prod v3", "RISK approval by risk-carla"
    outcome: str  # the record's decision_outcome
    rationale: str
    decision_id: str
    actor: str
    version: str | None = None


@dataclass(frozen=True)
class Check:
    value: float | None
    threshold: float | None
    breached: bool = False


@dataclass(frozen=True)
class MonitoringDay:
    """One EOD verdict (the last one recorded for its business date)."""

    business_date: str
    action: str  # monitor | plan_retrain | rollback | drop_challenger
    reason_code: str
    champion: str | None
    kpi: Check  # the primary KPI on the day's labels; threshold: the lowest (highest) value allowed
    psi: Check  # the largest PSI of a feature against its limit
    worst_features: list[tuple[str, float]]  # the features of the largest PSI, largest first (up to 3)
    missing: Check
    failures: Check  # failure rate
    latency: Check  # p95 latency, ms
    breached: list[str]
    led_to: str | None  # "rollback" | "retrain" when the verdict asked for one; None otherwise
    decision_id: str = ""


@dataclass(frozen=True)
class ChampionStep:
    at: datetime
    version: str
    how: str  # promotion | rollback
    decision_id: str


@dataclass(frozen=True)
class ModelPage:
    row: ModelRow
    kpi: str | None  # the primary KPI's name
    kpi_direction: str  # higher | lower
    timeline: list[TimelineEntry]  # newest first
    days: list[MonitoringDay]  # oldest business date first
    champion_history: list[ChampionStep]  # oldest first
    versions: list[str] = field(default_factory=list)  # versions with an evidence pack to download
    registry_champion: str | None = None  # what the registry's alias says now (None: not asked)


@dataclass(frozen=True)
class EvidenceDownload:
    filename: str
    content: bytes
    media_type: str = "application/zip"

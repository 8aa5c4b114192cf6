"""The retrain gateway (pure): retrain now, defer to a planned slot, or no retrain, and why.

Inputs (``RetrainSignals``): PSI per feature of current prod inputs vs the champion's training data,
the primary KPI's relative drop vs its baseline, days since the last refit, and what triggered the
evaluation. Thresholds (``RetrainPolicy``, the seeds' defaults):

| signal | urgent → ``retrain`` | plan → ``defer`` | below → ``no_retrain`` (monitor) |
|---|---|---|---|
| max PSI | ≥ 0.3 | 0.2 – 0.3 | < 0.2 |
| KPI drop | > 10 % | 5 – 10 % | < 5 % |

and: no champion yet → ``retrain`` (bootstrap); a new version registered in ``dev`` → ``retrain``
(build the governed staging candidate from it); age ≥ ``refit_days`` → ``retrain`` (periodic refit);
an event about a version releasegate itself registered (staging/prod) → ``no_retrain`` (no loops).
A planned retrain is deferred to the next ``plan_hour_utc`` (off-peak). Every outcome is a decision.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from releasegate.policy.thresholds import band


class RetrainReason(StrEnum):
    """Why the retrain gateway decided what it did (``RetrainDecision.reason_code``)."""

    SELF_EVENT = "SELF_EVENT"
    NO_CHAMPION = "NO_CHAMPION"
    DRIFT_URGENT = "DRIFT_URGENT"
    KPI_DROP_URGENT = "KPI_DROP_URGENT"
    NEW_DEV_VERSION = "NEW_DEV_VERSION"
    MANUAL = "MANUAL"
    RETRAIN_PLANNED = "RETRAIN_PLANNED"
    PERIODIC_REFIT = "PERIODIC_REFIT"
    WITHIN_LIMITS = "WITHIN_LIMITS"


class RetrainTrigger(StrEnum):
    drift = "drift"
    kpi = "kpi"
    periodic = "periodic"
    registry_event = "registry_event"
    manual = "manual"


class RetrainPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    psi_urgent: float = 0.3
    psi_plan: float = 0.2
    kpi_drop_urgent: float = 0.10
    kpi_drop_plan: float = 0.05
    refit_days: int = 30
    plan_hour_utc: int = Field(default=2, ge=0, le=23)


class RetrainSignals(BaseModel):
    model_config = ConfigDict(frozen=True)
    trigger: RetrainTrigger
    has_champion: bool = True
    psi: dict[str, float] = Field(default_factory=dict)
    # the features whose PSI is beyond sampling noise (policy.drift), banded instead of ``psi`` when known
    psi_beyond_noise: dict[str, float] | None = None
    kpi_drop: float | None = None  # relative: 0.07 = 7 % worse than baseline
    days_since_refit: float | None = None
    source_environment: str | None = None  # for registry events


class RetrainDecision(BaseModel):
    model_config = ConfigDict(frozen=True)
    outcome: Literal["retrain", "defer", "no_retrain"]
    reason_code: RetrainReason
    reason: str
    urgency: Literal["urgent", "planned", "periodic", "bootstrap", "requested", "none"] = "none"
    next_evaluation_at: datetime | None = None


def next_plan_slot(now: datetime, hour_utc: int) -> datetime:
    slot = now.replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    return slot if slot > now else slot + timedelta(days=1)


def retrain_gateway(s: RetrainSignals, p: RetrainPolicy, now: datetime) -> RetrainDecision:
    if s.trigger is RetrainTrigger.registry_event and s.source_environment not in (None, "dev"):
        return RetrainDecision(
            outcome="no_retrain",
            reason_code=RetrainReason.SELF_EVENT,
            reason=f"version registered in {s.source_environment} by the governed pipeline itself",
        )
    if not s.has_champion:
        return RetrainDecision(
            outcome="retrain",
            reason_code=RetrainReason.NO_CHAMPION,
            urgency="bootstrap",
            reason="no champion in prod yet: train the first candidate",
        )
    judged = s.psi if s.psi_beyond_noise is None else s.psi_beyond_noise
    worst = max(judged.values()) if judged else 0.0
    worst_f = max(judged, key=lambda k: judged[k]) if judged else None
    drop = s.kpi_drop or 0.0
    psi_band, drop_band = band(worst, p.psi_plan, p.psi_urgent), band(drop, p.kpi_drop_plan, p.kpi_drop_urgent)
    if psi_band == "urgent":
        return RetrainDecision(
            outcome="retrain",
            reason_code=RetrainReason.DRIFT_URGENT,
            urgency="urgent",
            reason=f"PSI {worst:.3f} on {worst_f} > {p.psi_urgent}",
        )
    if drop_band == "urgent":
        return RetrainDecision(
            outcome="retrain",
            reason_code=RetrainReason.KPI_DROP_URGENT,
            urgency="urgent",
            reason=f"primary KPI {drop:.1%} below baseline (> {p.kpi_drop_urgent:.0%})",
        )
    if s.trigger is RetrainTrigger.registry_event:
        return RetrainDecision(
            outcome="retrain",
            reason_code=RetrainReason.NEW_DEV_VERSION,
            urgency="requested",
            reason="a new version was registered in dev: build its governed staging candidate",
        )
    if s.trigger is RetrainTrigger.manual:
        return RetrainDecision(
            outcome="retrain",
            reason_code=RetrainReason.MANUAL,
            urgency="requested",
            reason="retrain requested by an operator",
        )
    if psi_band == "plan" or drop_band == "plan":
        what = f"PSI {worst:.3f} on {worst_f}" if psi_band == "plan" else f"KPI drop {drop:.1%}"
        at = next_plan_slot(now, p.plan_hour_utc)
        return RetrainDecision(
            outcome="defer",
            reason_code=RetrainReason.RETRAIN_PLANNED,
            urgency="planned",
            reason=f"{what}: plan a retrain at the next off-peak slot",
            next_evaluation_at=at,
        )
    if s.days_since_refit is not None and s.days_since_refit >= p.refit_days:
        return RetrainDecision(
            outcome="retrain",
            reason_code=RetrainReason.PERIODIC_REFIT,
            urgency="periodic",
            reason=f"{s.days_since_refit:.0f} days since the last refit (≥ {p.refit_days})",
        )
    return RetrainDecision(
        outcome="no_retrain",
        reason_code=RetrainReason.WITHIN_LIMITS,
        reason=f"max PSI {worst:.3f} < {p.psi_plan}, KPI drop {drop:.1%} < {p.kpi_drop_plan:.0%}: monitor",
    )

"""The rollback-vs-retrain decision tree (seed 004), as one pure function.

Order matters: the first rule that holds decides.

| rule | action | reason code |
|---|---|---|
| immediate business impact | rollback | BUSINESS_IMPACT |
| PSI > 0.3 | rollback and urgent retrain | DRIFT_URGENT |
| metric drop > 10 % | rollback | KPI_DROP_SEVERE |
| metric drop 5-10 %, a challenger is live (shadow, canary, A/B) | drop the challenger only | KPI_DROP_CANARY |
| metric drop 5-10 %, no challenger (full, post-retrain) | rollback: the only undo of a full release | KPI_DROP_FULL |
| PSI 0.2-0.3 | plan a retrain | DRIFT_PLAN |
| otherwise (drop < 5 %) | monitor | WITHIN_LIMITS |

PSI is banded as judged with the day's sample size (``policy.drift``): ``psi_beyond_noise``, the largest
PSI of a feature above its sampling-noise critical value (0 when none is), when the caller knows it;
``psi_note`` (critical value, n, m, false-alarm rate, or "insufficient sample") is quoted in the reason.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from releasegate.policy.thresholds import band


class TreeReason(StrEnum):
    """Why the decision tree chose its action (``TreeResult.reason_code``)."""

    BUSINESS_IMPACT = "BUSINESS_IMPACT"
    DRIFT_URGENT = "DRIFT_URGENT"
    KPI_DROP_SEVERE = "KPI_DROP_SEVERE"
    KPI_DROP_CANARY = "KPI_DROP_CANARY"
    KPI_DROP_FULL = "KPI_DROP_FULL"
    DRIFT_PLAN = "DRIFT_PLAN"
    WITHIN_LIMITS = "WITHIN_LIMITS"


class Stage(StrEnum):
    shadow = "shadow"
    canary = "canary"
    ab = "ab"
    full = "full"
    post_retrain = "post_retrain"


CHALLENGER_STAGES = {Stage.shadow, Stage.canary, Stage.ab}


class Action(StrEnum):
    rollback = "rollback"
    drop_challenger = "drop_challenger"
    plan_retrain = "plan_retrain"
    monitor = "monitor"


class TreeThresholds(BaseModel):
    psi_urgent: float = Field(0.3, gt=0)
    psi_plan: float = Field(0.2, gt=0)
    drop_severe: float = Field(0.10, gt=0)
    drop_canary: float = Field(0.05, gt=0)


class TreeInput(BaseModel):
    stage: Stage
    max_psi: float = 0.0
    metric_drop: float | None = None
    business_impact: bool = False
    psi_beyond_noise: float | None = None  # None: band max_psi (sample size unknown)
    psi_note: str = ""


class TreeResult(BaseModel):
    action: Action
    retrain: bool = False
    urgent: bool = False
    reason_code: TreeReason
    reason: str


def decide(i: TreeInput, t: TreeThresholds | None = None) -> TreeResult:
    t = t or TreeThresholds()
    drop = i.metric_drop or 0.0
    if i.business_impact:
        return TreeResult(
            action=Action.rollback, reason_code=TreeReason.BUSINESS_IMPACT, reason="immediate business impact"
        )
    psi = i.max_psi if i.psi_beyond_noise is None else i.psi_beyond_noise
    note = f" ({i.psi_note})" if i.psi_note else ""
    psi_band, drop_band = band(psi, t.psi_plan, t.psi_urgent), band(drop, t.drop_canary, t.drop_severe)
    if psi_band == "urgent":
        return TreeResult(
            action=Action.rollback,
            retrain=True,
            urgent=True,
            reason_code=TreeReason.DRIFT_URGENT,
            reason=f"PSI {psi:.3f} > {t.psi_urgent}{note}: roll back and retrain urgently",
        )
    if drop_band == "urgent":
        return TreeResult(
            action=Action.rollback,
            reason_code=TreeReason.KPI_DROP_SEVERE,
            reason=f"metric {drop:.1%} below baseline (> {t.drop_severe:.0%})",
        )
    if drop_band == "plan":
        if i.stage in CHALLENGER_STAGES:
            return TreeResult(
                action=Action.drop_challenger,
                reason_code=TreeReason.KPI_DROP_CANARY,
                reason=f"metric {drop:.1%} below baseline during {i.stage}: drop the challenger, keep the champion",
            )
        return TreeResult(
            action=Action.rollback,
            reason_code=TreeReason.KPI_DROP_FULL,
            reason=f"metric {drop:.1%} below baseline at stage {i.stage}: no challenger to drop, roll back",
        )
    if psi_band == "plan":
        return TreeResult(
            action=Action.plan_retrain,
            retrain=True,
            reason_code=TreeReason.DRIFT_PLAN,
            reason=f"PSI {psi:.3f} in [{t.psi_plan}, {t.psi_urgent}]{note}: plan a retrain",
        )
    return TreeResult(
        action=Action.monitor,
        reason_code=TreeReason.WITHIN_LIMITS,
        reason=f"PSI {i.max_psi:.3f}{note}, drop {drop:.1%}: monitor",
    )

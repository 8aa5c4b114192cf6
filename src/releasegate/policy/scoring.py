"""EOD scoring policy: canary split, shadow comparison, and the verdict that decides rollback or retrain.

Pure (numpy, pydantic; no Prefect, no MLflow). The EOD flow scores a business date's batch with the
champion and, when a ``challenger`` alias exists, scores the same batch in shadow and lets the
challenger serve a canary share; then it asks ``judge`` what to do. "Why was this model rolled back"
is answered here and in ``rollback_tree`` (the seed 004 tree):

* The **champion** is judged at stage ``full`` (or ``post_retrain`` when the caller says so): PSI of
  today's inputs vs its training data, and its primary metric on the batch vs its logged baseline.
  Immediate business impact (prediction failures over the limit, schema violations) rolls back.
* The **challenger** is judged at its stage (``shadow`` when it only scores in shadow, ``canary`` when it
  serves a share of the batch): PSI vs its own training data, and its metric vs the champion's on the
  same rows. While a challenger is live, the champion keeps serving, so a "rollback" verdict on the
  challenger means dropping the challenger (a canary rollback), never moving the champion.
* A rollback of the champion wins over a canary rollback (a full rollback drops the challenger too);
  a retrain is asked for whenever either tree says so (urgent if either says urgent).
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from releasegate.policy.metrics import Direction, relative_drop
from releasegate.policy.rollback_tree import Action, Stage, TreeInput, TreeReason, TreeResult, TreeThresholds, decide


def canary_mask(rows: int, share: float, salt: str) -> np.ndarray:
    """Which rows the challenger serves: a deterministic pseudo-random ``share`` of ``rows``.

    Deterministic per ``salt`` (model and business date), so a retried EOD run serves the same rows."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"canary_share: must lie in [0, 1], got {share}")
    seed = int.from_bytes(hashlib.sha256(salt.encode()).digest()[:8], "big")
    return np.random.default_rng(seed).random(rows) < share


def challenger_stage(has_challenger: bool, canary_share: float) -> Stage | None:
    if not has_challenger:
        return None
    return Stage.canary if canary_share > 0 else Stage.shadow


class ShadowComparison(BaseModel):
    rows: int
    agreement: float | None = Field(
        description="share of rows where both models take the same 0/1 decision (classification; None otherwise)"
    )
    mean_abs_diff: float = Field(description="mean |prediction_challenger - prediction_champion|")
    champion_metric: float | None
    challenger_metric: float | None
    relative_drop: float | None = Field(
        description="how much worse the challenger's metric is, relative, in the metric's direction; positive = worse"
    )


def compare(
    p_champion: np.ndarray,
    p_challenger: np.ndarray,
    champion_metric: float | None,
    challenger_metric: float | None,
    threshold: float | None = 0.5,
    direction: Direction = Direction.higher_better,
) -> ShadowComparison:
    """Champion vs challenger on the same rows. ``threshold``: the 0/1 decision cut of a classifier's
    scores (None for a regression: no agreement share); ``direction``: which way the metric is better."""
    a, b = np.asarray(p_champion, dtype=np.float64), np.asarray(p_challenger, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    agree = None
    if threshold is not None:
        agree = round(float(((a[ok] >= threshold) == (b[ok] >= threshold)).mean()) if ok.any() else 0.0, 6)
    diff = float(np.abs(a[ok] - b[ok]).mean()) if ok.any() else 0.0
    return ShadowComparison(
        rows=int(a.size),
        agreement=agree,
        mean_abs_diff=round(diff, 6),
        champion_metric=champion_metric,
        challenger_metric=challenger_metric,
        relative_drop=relative_drop(challenger_metric, champion_metric, direction),
    )


class Assessment(BaseModel):
    """What one model looked like on the batch (the measured inputs of the tree)."""

    version: str
    stage: Stage
    max_psi: float
    metric_drop: float | None
    business_impact: bool = False
    impact_detail: str = ""
    psi_beyond_noise: float | None = None  # the drift rule's judged PSI (policy.drift); None: band max_psi
    drift_note: str = ""  # the drift rule's verdict: critical value, n, m, false-alarm rate


class Verdict(BaseModel):
    champion: TreeResult
    challenger: TreeResult | None = None
    rollback_method: Literal["full", "canary"] | None = None
    retrain: bool = False
    urgent: bool = False
    reason_code: TreeReason
    reason: str

    @property
    def action(self) -> str:
        if self.rollback_method == "full":
            return "rollback"
        if self.rollback_method == "canary":
            return "drop_challenger"
        return "plan_retrain" if self.retrain else "monitor"


def judge(champion: Assessment, challenger: Assessment | None, thresholds: TreeThresholds) -> Verdict:
    """Run the tree for the champion and (when live) the challenger and combine the two answers."""

    def tree(a: Assessment) -> TreeResult:
        return decide(
            TreeInput(
                stage=a.stage,
                max_psi=a.max_psi,
                metric_drop=a.metric_drop,
                business_impact=a.business_impact,
                psi_beyond_noise=a.psi_beyond_noise,
                psi_note=a.drift_note,
            ),
            thresholds,
        )

    c = tree(champion)
    ch = tree(challenger) if challenger is not None else None
    retrain = c.retrain or bool(ch and ch.retrain)
    urgent = c.urgent or bool(ch and ch.urgent)
    if c.action is Action.rollback:
        return Verdict(
            champion=c,
            challenger=ch,
            rollback_method="full",
            retrain=retrain,
            urgent=urgent,
            reason_code=c.reason_code,
            reason=f"champion v{champion.version}: {c.reason}",
        )
    if ch is not None and challenger is not None and ch.action in (Action.rollback, Action.drop_challenger):
        return Verdict(
            champion=c,
            challenger=ch,
            rollback_method="canary",
            retrain=retrain,
            urgent=urgent,
            reason_code=ch.reason_code,
            reason=f"challenger v{challenger.version} ({challenger.stage}): {ch.reason}",
        )
    deciding = c if c.retrain or ch is None or not ch.retrain else ch
    who = f"champion v{champion.version}" if deciding is c else f"challenger v{challenger.version}"  # type: ignore[union-attr]
    return Verdict(
        champion=c,
        challenger=ch,
        retrain=retrain,
        urgent=urgent,
        reason_code=deciding.reason_code,
        reason=f"{who}: {deciding.reason}",
    )

"""Monitoring checks for a scored batch: drift, missing values, schema, failures, latency, metric drop.

Pure and vectorised (numpy): the EOD scoring flow measures, this module judges. Thresholds are the
seeds' defaults and live in ``blocks/monitoring_thresholds.yaml`` (block
``releasegate-config/monitoring-thresholds``, the same one the promotion gate ``monitoring_rollback``
requires): PSI > 0.2, missing > 5 %, failure rate > 1 %, metric drop > 5 %, latency p95 over the SLA.
The decision tree's thresholds come from the same block (``tree_thresholds``). Drift is judged by
``policy.drift``'s rule: a PSI counts only above the sampling noise of the day's rows (``false_alarm_rate``),
and fewer than ``min_rows`` rows is "insufficient sample", shown, not judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from releasegate.policy.drift import (
    DEFAULT_FALSE_ALARM_RATE,
    DEFAULT_MIN_ROWS,
    DriftJudgement,
    DriftSample,
    DriftSettings,
    judge,
    sample_of,
)
from releasegate.policy.metrics import Direction, relative_drop
from releasegate.policy.psi import ReferenceProfile, psi_against, reference_profile
from releasegate.policy.rollback_tree import TreeThresholds


class MonitoringPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_psi: float = Field(0.2, gt=0)
    urgent_psi: float = Field(0.3, gt=0)
    max_missing_rate: float = Field(0.05, ge=0, le=1)
    max_failure_rate: float = Field(0.01, ge=0, le=1)
    max_metric_drop: float = Field(0.05, ge=0, le=1)
    severe_metric_drop: float = Field(0.10, ge=0, le=1)
    max_latency_p95_ms: float = Field(500.0, gt=0)
    false_alarm_rate: float = Field(DEFAULT_FALSE_ALARM_RATE, gt=0, lt=0.5)  # drift: clean batches flagged
    min_rows: int = Field(DEFAULT_MIN_ROWS, ge=20)  # drift: fewer rows is "insufficient sample"

    def for_model(self, drift: DriftSettings | None) -> MonitoringPolicy:
        """These thresholds with the model's own drift rule (manifest ``drift``) where it sets one; its
        ``max_psi`` is the plan level (the urgent level stays at least as high)."""
        if drift is None:
            return self
        update: dict[str, float | int] = {}
        if drift.max_psi is not None:
            update |= {"max_psi": drift.max_psi, "urgent_psi": max(self.urgent_psi, drift.max_psi)}
        if drift.false_alarm_rate is not None:
            update["false_alarm_rate"] = drift.false_alarm_rate
        if drift.min_rows is not None:
            update["min_rows"] = drift.min_rows
        return self.model_copy(update=update)

    def tree_thresholds(self) -> TreeThresholds:
        return TreeThresholds(
            psi_urgent=self.urgent_psi,
            psi_plan=self.max_psi,
            drop_severe=self.severe_metric_drop,
            drop_canary=self.max_metric_drop,
        )


class Check(BaseModel):
    name: str
    value: float | None
    threshold: float
    breached: bool
    detail: str = ""


class MonitoringReport(BaseModel):
    checks: list[Check]
    psi: dict[str, float]
    drift: DriftJudgement | None = None

    @property
    def psi_beyond_noise(self) -> float | None:
        """The largest PSI of a feature that drifted beyond sampling noise (0: none), for the tree; None
        when drift was not judged on a known sample size (the tree then bands the raw max)."""
        if self.drift is None or self.drift.critical is None and self.drift.outcome != "insufficient":
            return None
        return self.drift.beyond_noise

    def drift_for_tree(self) -> dict[str, Any]:
        """The drift fields of the batch's ``scoring.Assessment``: the judged PSI and the rule's note."""
        return {"psi_beyond_noise": self.psi_beyond_noise, "drift_note": self.drift.note() if self.drift else ""}

    @property
    def breached(self) -> list[Check]:
        return [c for c in self.checks if c.breached]

    @property
    def max_psi(self) -> float:
        finite = [v for v in self.psi.values() if np.isfinite(v)]
        return max(finite) if finite else 0.0


def missing_rate(x: np.ndarray) -> np.ndarray:
    """Share of NaN per column."""
    a = np.asarray(x, dtype=np.float64)
    return np.isnan(a).mean(axis=0) if a.size else np.zeros(a.shape[-1] if a.ndim == 2 else 0)


def schema_violations(x: np.ndarray, features: Sequence[str], expected: Sequence[str]) -> list[str]:
    """What is wrong with the batch's columns vs the model's signature (names, order, finite values)."""
    out = []
    if list(features) != list(expected):
        missing = [f for f in expected if f not in features]
        extra = [f for f in features if f not in expected]
        out.append(
            f"columns differ: missing {missing}, unexpected {extra}" if missing or extra else "column order differs"
        )
    a = np.asarray(x, dtype=np.float64)
    if np.isinf(a).any():
        out.append(f"{int(np.isinf(a).sum())} infinite values")
    return out


def latency_percentiles(latencies_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(latencies_ms, dtype=np.float64)
    if a.size == 0:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def metric_drop(
    current: float | None, baseline: float | None, direction: Direction = Direction.higher_better
) -> float | None:
    """Relative drop of the primary metric vs baseline in the metric's direction (positive = worse: a
    lower AUC, a higher RMSE); None when unknown."""
    return relative_drop(current, baseline, direction)


def evaluate(
    policy: MonitoringPolicy,
    *,
    reference: np.ndarray | None = None,
    profile: ReferenceProfile | None = None,
    drift: Mapping[str, float] | None = None,
    drift_missing: str = "no reference to measure drift against",
    current: np.ndarray,
    features: Sequence[str],
    expected_features: Sequence[str] | None = None,
    rows: int,
    failures: int,
    latency_ms: Mapping[str, float],
    metric_now: float | None = None,
    metric_baseline: float | None = None,
    metric_direction: Direction = Direction.higher_better,
) -> MonitoringReport:
    """The checks of one scored batch. Drift is ``drift`` (PSI per feature, measured against the version's
    logged reference ``profile``) or computed here from the ``reference`` rows; with neither, the drift
    check is not breached and its detail says ``drift_missing`` (what to log). Judged with the sample
    size (``policy.drift``) when the profile or reference is given; else on the fixed ``max_psi``."""
    measured = drift is not None or reference is not None
    if profile is None and reference is not None:
        profile = reference_profile(reference, features)
    if drift is None:
        drift = (
            {}
            if profile is None
            else dict(zip(features, (float(v) for v in psi_against(profile, current)), strict=True))
        )
    drift = dict(drift)
    rows_in = int(np.shape(current)[0])
    finite = {f: v for f, v in drift.items() if np.isfinite(v)}
    worst = max(finite, key=finite.__getitem__) if finite else None
    miss = missing_rate(current)
    sample: DriftSample | None = None
    if profile is not None:  # n: the fewest present values of a profiled feature that has any
        col = {f: j for j, f in enumerate(features)}
        present = [round(rows_in * (1 - miss[col[f]])) for f in profile.features if f in col]
        n = min((c for c in present if c > 0), default=0)
        sample = sample_of(n, profile.rows, profile.features, profile.shares)
    judged = judge(finite, sample, policy.max_psi, policy.false_alarm_rate, policy.min_rows) if measured else None
    # A feature with no values at all has no PSI (NaN): it must not hide drift elsewhere (NaN compares
    # False), and it is a schema violation in its own right.
    empty = [f for f, v in drift.items() if not np.isfinite(v)]
    worst_miss = float(miss.max()) if miss.size else 0.0
    schema = schema_violations(current, features, expected_features or features)
    if empty:
        schema.append(f"no values for {', '.join(empty)}")
    fail_rate = failures / rows if rows else 1.0
    drop = metric_drop(metric_now, metric_baseline, metric_direction)
    checks = [
        Check(
            name="drift_psi",
            value=drift[worst] if worst else 0.0,
            threshold=round(judged.limit, 6) if judged is not None else policy.max_psi,
            breached=judged is not None and judged.outcome == "drift",
            detail=f"max on {worst}" if worst else ("" if measured else drift_missing),  # judged: report.drift
        ),
        Check(
            name="missing_rate",
            value=worst_miss,
            threshold=policy.max_missing_rate,
            breached=worst_miss > policy.max_missing_rate,
            detail=f"max on {features[int(miss.argmax())]}" if miss.size else "",
        ),
        Check(name="schema", value=float(len(schema)), threshold=0, breached=bool(schema), detail="; ".join(schema)),
        Check(
            name="failure_rate",
            value=fail_rate,
            threshold=policy.max_failure_rate,
            breached=fail_rate > policy.max_failure_rate,
            detail=f"{failures}/{rows} rows failed",
        ),
        Check(
            name="latency_p95_ms",
            value=float(latency_ms.get("p95", 0.0)),
            threshold=policy.max_latency_p95_ms,
            breached=float(latency_ms.get("p95", 0.0)) > policy.max_latency_p95_ms,
        ),
        Check(
            name="metric_drop",
            value=drop,
            threshold=policy.max_metric_drop,
            breached=drop is not None and drop > policy.max_metric_drop,
            detail="no baseline" if drop is None else f"{metric_now:.4f} vs baseline {metric_baseline:.4f}",
        ),
    ]
    return MonitoringReport(checks=checks, psi=drift, drift=judged)

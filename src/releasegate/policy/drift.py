"""Drift that knows its sample size: one rule for the promotion gate and EOD monitoring (pure).

A feature has drifted when its PSI is above both

* the model's **threshold** (``max_psi``, 0.2 by default: how large a shift matters), and
* its **critical value**: the PSI that sampling noise alone exceeds with the configured
  **false-alarm rate** spread over the features measured (Šidák), given n current rows and the m
  rows of the reference profile (``releasegate.policy.psi.critical_psi``).

With few rows the critical value rules (0.39 for 30 decile features at n = 120, m = 426 and a 1 %
false-alarm rate, where the fixed 0.2 held 64 % of clean samples); with many, the threshold does. Below
``min_rows`` current (or reference) rows nothing is judged: the outcome is ``insufficient``, its own
result, neither a pass nor a hold. Measured false-alarm and detection rates: ``bench/drift_bench.py``
(``bench/RESULTS.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from releasegate.policy.psi import DEFAULT_BINS, DEFAULT_FLOOR, critical_psi, per_feature_level

DEFAULT_FALSE_ALARM_RATE = 0.01
DEFAULT_MIN_ROWS = 100


class DriftSettings(BaseModel):
    """A model's own drift rule (manifest ``models[<name>].drift``); a field left out takes the global
    default (``blocks/gate_policy.yaml``: ``max_psi``, ``drift_false_alarm_rate``, ``drift_min_rows``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_psi: float | None = Field(default=None, gt=0)
    false_alarm_rate: float | None = Field(default=None, gt=0, lt=0.5)
    min_rows: int | None = Field(default=None, ge=20)


class DriftSample(BaseModel):
    """What the PSI figures were measured on: ``rows`` current rows (n; the fewest present values of
    any feature), the ``reference_rows`` of the profile (m), and each feature's reference bin shares."""

    model_config = ConfigDict(frozen=True)
    rows: int
    reference_rows: int | None = None
    shares: dict[str, list[float]] = Field(default_factory=dict)


Outcome = Literal["ok", "drift", "insufficient", "unmeasured"]


class DriftJudgement(BaseModel):
    model_config = ConfigDict(frozen=True)
    outcome: Outcome
    threshold: float
    false_alarm_rate: float
    min_rows: int
    features: int = 0
    rows: int | None = None  # n
    reference_rows: int | None = None  # m
    worst: str | None = None
    max_psi: float = 0.0  # the largest PSI measured, noise or not
    critical: float | None = None  # the worst feature's critical value (None: sample size unknown)
    drifted: dict[str, float] = Field(default_factory=dict)  # features above threshold and critical value

    @property
    def limit(self) -> float:
        """What the worst feature's PSI was held against: the larger of threshold and critical value."""
        return max(self.threshold, self.critical or 0.0)

    @property
    def beyond_noise(self) -> float:
        """The largest PSI of a drifted feature; 0 when none drifted (what the decision tree bands)."""
        return max(self.drifted.values(), default=0.0)

    def basis(self) -> str:
        """The critical value with what it was computed from: critical value, n, m, false-alarm rate."""
        if self.critical is None:
            return f"fixed limit {self.threshold} (sample size unknown, no allowance for sampling noise)"
        m = "exact reference" if self.reference_rows is None else f"m={self.reference_rows} reference rows"
        return (
            f"critical value {self.critical:.4f} at n={self.rows} rows, {m}, false-alarm rate "
            f"{self.false_alarm_rate:g} over {self.features} features (Šidák); threshold {self.threshold}"
        )

    def note(self) -> str:
        """The short form for a decision's reason: what the PSI was held against, or why not judged."""
        if self.outcome == "insufficient":
            return self.text()
        return self.basis() if self.critical is not None else ""

    def text(self) -> str:
        if self.outcome == "insufficient":
            m = self.reference_rows if self.reference_rows is not None else "?"
            return (
                f"insufficient sample: n={self.rows} current rows, m={m} reference rows; need n, m >= "
                f"{self.min_rows}: drift not judged"
            )
        if self.outcome == "unmeasured":
            return "no drift measurement"
        head = f"max PSI {self.max_psi:.4f} on {self.worst} over {self.features} features"
        if self.outcome == "drift":
            names = ", ".join(sorted(self.drifted, key=self.drifted.__getitem__, reverse=True)[:5])
            return f"{head}; drifted beyond noise: {names}; {self.basis()}"
        return f"{head}, within the limit {self.limit:.4f}; {self.basis()}"


def judge(
    psi: Mapping[str, float],
    sample: DriftSample | None,
    threshold: float,
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
    min_rows: int = DEFAULT_MIN_ROWS,
    floor: float = DEFAULT_FLOOR,
) -> DriftJudgement:
    """Judge PSI per feature (NaN: not measured, left out). ``sample`` None: the sample size is unknown
    and only the fixed ``threshold`` applies (the rule before sample sizes were known)."""
    values = {f: float(v) for f, v in psi.items() if v == v and abs(v) != float("inf")}
    base = DriftJudgement(
        outcome="unmeasured", threshold=threshold, false_alarm_rate=false_alarm_rate, min_rows=min_rows
    )
    if not values:
        return base
    worst = max(values, key=values.__getitem__)
    known = {"features": len(values), "worst": worst, "max_psi": values[worst]}
    if sample is None:
        drifted = {f: v for f, v in values.items() if v > threshold}
        return base.model_copy(update=known | {"outcome": "drift" if drifted else "ok", "drifted": drifted})
    sized = known | {"rows": sample.rows, "reference_rows": sample.reference_rows}
    m = sample.reference_rows
    if sample.rows < min_rows or (m is not None and m < min_rows):
        return base.model_copy(update=sized | {"outcome": "insufficient"})
    level = per_feature_level(false_alarm_rate, len(values))
    uniform = [1 / DEFAULT_BINS] * DEFAULT_BINS
    critical = {f: critical_psi(sample.rows, m, sample.shares.get(f, uniform), level, floor) for f in values}
    drifted = {f: v for f, v in values.items() if v > threshold and v > critical[f]}
    return base.model_copy(
        update=sized | {"outcome": "drift" if drifted else "ok", "critical": critical[worst], "drifted": drifted}
    )


def sample_of(
    rows: int, reference_rows: int | None, features: Sequence[str], shares: Sequence[Sequence[float]]
) -> DriftSample:
    """A ``DriftSample`` from a reference profile's features and shares."""
    return DriftSample(
        rows=rows,
        reference_rows=reference_rows,
        shares={f: [float(x) for x in s] for f, s in zip(features, shares, strict=True)},
    )

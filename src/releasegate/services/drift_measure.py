"""Drift of a model's current inputs against the reference profile logged with a version's run (PSI per
feature): what the promotion's dossier and the retrain gateway measure (``services.promotion``,
``services.retrain``)."""

from __future__ import annotations

import math
from datetime import date

from releasegate.adapters.data_sources import DataSourceError, load_frame
from releasegate.policy.drift import DriftSample, sample_of
from releasegate.policy.models import ModelSpec, manifest_field
from releasegate.policy.psi import present_rows, psi_against
from releasegate.ports import ModelRegistry

PROFILE_MEASURE = "log a reference profile with the training run: releasegate.evidence.log_reference_profile(X_train)"


def drift_from_profile(
    registry: ModelRegistry, spec: ModelSpec, name: str, version: str, today: date, look_back_days: int = 7
) -> tuple[dict[str, float], str | None]:
    """PSI per feature of the model's newest current inputs (today, else up to ``look_back_days`` business
    dates of its calendar back) against the reference profile logged with the version's run; or no
    figures and what to do."""
    drift, measure, _ = measure_drift(registry, spec, name, version, today, look_back_days)
    return drift, measure


def measure_drift(
    registry: ModelRegistry, spec: ModelSpec, name: str, version: str, today: date, look_back_days: int = 7
) -> tuple[dict[str, float], str | None, DriftSample | None]:
    """``drift_from_profile`` and what it was measured on: n, m and the profile's bins (``policy.drift``)."""
    profile = registry.reference_profile(name, version)
    if profile is None:
        return {}, PROFILE_MEASURE, None
    frame, why = None, ""
    for day in spec.calendar.looking_back(today, look_back_days):
        try:
            frame = load_frame(spec, "current_inputs", day)
            break
        except DataSourceError as exc:
            why = exc.rule
    if frame is None:
        return {}, f"provide current inputs ({manifest_field(spec.name, 'current_inputs')}): {why}", None
    missing = [f for f in profile.features if f not in frame.columns]
    if missing:
        return {}, f"current inputs lack the profiled feature(s) {', '.join(missing)}: align the data source", None
    current = frame[profile.features].to_numpy(dtype=float)
    values = psi_against(profile, current)
    drift = {f: round(float(v), 6) for f, v in zip(profile.features, values, strict=True) if math.isfinite(v)}
    sample = sample_of(present_rows(current), profile.rows, profile.features, profile.shares)
    return drift, None if drift else "current inputs have no values for any profiled feature", sample

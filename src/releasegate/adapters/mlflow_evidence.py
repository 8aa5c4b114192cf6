"""Evidence a team's training code logs with its MLflow run so releasegate can judge the version without
re-reading its training data: the reference profile (per-feature bins and shares) for drift.

    import releasegate.evidence
    with mlflow.start_run():
        ...fit...
        releasegate.evidence.log_reference_profile(X_train)        # a DataFrame: its columns are the features
        mlflow.sklearn.log_model(model, name="model", input_example=X_train[:5], registered_model_name=...)

The profile is the run artifact ``releasegate/reference_profile.json``; ``mlflow_registry.reference_profile``
reads it back for a registered version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from releasegate.policy.psi import DEFAULT_BINS, ReferenceProfile, reference_profile

PROFILE_ARTIFACT = "releasegate/reference_profile.json"


def log_reference_profile(X: Any, features: Sequence[str] | None = None, bins: int = DEFAULT_BINS) -> ReferenceProfile:
    """Compute the profile of ``X`` (a DataFrame, or a 2-D array with ``features``) and log it to the
    active MLflow run (one is started if none is active, as ``mlflow.log_dict`` does)."""
    import mlflow
    import numpy as np

    if features is None:
        if not hasattr(X, "columns"):
            raise ValueError("features: required when X is not a DataFrame (name the columns in order)")
        features = [str(c) for c in X.columns]
    profile = reference_profile(np.asarray(X, dtype=np.float64), list(features), bins)
    mlflow.log_dict(profile.model_dump(mode="json"), PROFILE_ARTIFACT)
    return profile

"""Helpers for a team's training code (public API): log what releasegate needs beside the model.

``log_reference_profile(X_train)`` logs the per-feature reference bins once per run, so drift at
promotion and at EOD is measured against them without re-reading the training set.
``log_sklearn_version(model, name, env, X_train=..., features=..., input_example=...)`` does the whole
logging of a scikit-learn model the way releasegate judges a version (profile, example, pinned
requirements, lineage tags) and registers it as ``<env>.<name>``.
"""

from releasegate.adapters.mlflow_evidence import PROFILE_ARTIFACT, log_reference_profile
from releasegate.adapters.mlflow_registry import log_sklearn_version

__all__ = ["PROFILE_ARTIFACT", "log_reference_profile", "log_sklearn_version"]

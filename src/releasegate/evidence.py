"""Helpers for a team's training code (public API): log what releasegate needs beside the model.

``log_reference_profile(X_train)`` logs the per-feature reference bins once per run, so drift at
promotion and at EOD is measured against them without re-reading the training set.
"""

from releasegate.adapters.mlflow_evidence import PROFILE_ARTIFACT, log_reference_profile

__all__ = ["PROFILE_ARTIFACT", "log_reference_profile"]

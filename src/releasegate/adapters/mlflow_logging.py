"""Log a fitted scikit-learn model the way releasegate judges a version (``releasegate.evidence``).

MLflow logs a model (``log_model`` with ``registered_model_name``: the run, its logged model, the
registered version) only through its fluent API, which reads MLflow's process-wide URIs: the registry's
store is MLflow's process-wide one for that block alone (``mlflow_scope.pointed_at``), then MLflow's
URIs are as they were. Everything else goes through the registry's own ``MlflowClient``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import mlflow
import numpy
import sklearn

from releasegate.adapters.mlflow_artifacts import git_sha
from releasegate.adapters.mlflow_evidence import log_reference_profile
from releasegate.adapters.mlflow_scope import pointed_at
from releasegate.fingerprint import fingerprint

if TYPE_CHECKING:
    from releasegate.adapters.mlflow_registry import MlflowRegistry


def log_sklearn_version(
    registry: MlflowRegistry,
    fitted: Any,
    model: str,
    env: str,
    *,
    X_train: Any,
    features: list[str],
    input_example: Any,
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    data_timestamp: str | None = None,
    extra_tags: dict[str, str] | None = None,
    skops_trusted_types: list[str] | None = None,
) -> str:
    """Log a fitted scikit-learn model the way releasegate judges a version, and register it as a new
    version of ``<env>.<model>``: params and metrics, lineage tags (git SHA, data timestamp,
    environment fingerprint, run id), the reference profile of ``X_train`` (drift), the
    ``input_example`` (smoke test and signature) and pinned requirements (reproducibility). Returns
    the version. MLflow logs a model only through its fluent API: this store is MLflow's
    process-wide one for the block alone (``mlflow_scope.pointed_at``)."""
    name = registry.model_name(env, model)
    tags = {
        "git_sha": git_sha(),
        "data_timestamp": data_timestamp or datetime.now(UTC).isoformat(),
        "env_fingerprint": fingerprint(),
        **(extra_tags or {}),
    }
    experiment = registry.experiment_id()
    with pointed_at(registry.tracking_uri, registry.registry_uri), mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_params(params or {})
        mlflow.log_metrics(metrics or {})
        mlflow.set_tags(tags)
        log_reference_profile(X_train, features)  # what the drift gates compare with
        info = mlflow.sklearn.log_model(
            fitted,
            name="model",
            input_example=input_example,
            registered_model_name=name,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"numpy=={numpy.__version__}"],
            skops_trusted_types=skops_trusted_types,
        )
    version = str(info.registered_model_version)
    registry.set_tags(name, version, {**tags, "run_id": run.info.run_id})
    return version

"""A team's own model, judged from what its training run logged in MLflow: a regression model on
scikit-learn's bundled diabetes data (rmse, lower is better), its reference profile, its input example
and its daily Parquet inputs. Real MLflow registry (SQLite in a temp dir); no edit to releasegate."""

from datetime import UTC, datetime

import numpy as np
import pytest
import yaml

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.bootstrap import use_clock
from releasegate.clock import FixedClock
from releasegate.policy.gates import GatePolicy, execute_gates
from releasegate.services.drift_measure import PROFILE_MEASURE
from releasegate.services.promotion import build_dossier

MODEL, TODAY = "diabetes_b", datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
COMMIT = "3f2c9a7e1b4d5c6a8f9e0d1c2b3a4f5e6d7c8b9a"  # the team's checkout the training ran from


@pytest.fixture
def team(rg_home, tmp_path, monkeypatch):
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True)
    X, y = data.data, data.target
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    manifest = tmp_path / "models.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "models": [
                    {
                        "name": MODEL,
                        "primary_kpi": {"metric": "rmse"},
                        "task": "regression",
                        "current_inputs": {"uri": str(inputs / "{business_date}.parquet")},
                    }
                ]
            }
        )
    )
    monkeypatch.setenv("RELEASEGATE_MODELS", str(manifest))
    with use_clock(FixedClock(TODAY)):
        yield X, y, inputs


def _log_version(X, y, profile: bool = True, commit: str = COMMIT) -> str:
    """What the team's training flow does: fit, log metrics, the profile and the model with an example.

    The run's source commit is set here, as MLflow sets it when the training script runs from a git
    checkout: left to MLflow it would depend on where pytest itself is installed."""
    from sklearn.linear_model import LinearRegression

    import releasegate.evidence

    mlflow = registry._mlflow()
    model = LinearRegression().fit(X[:300], y[:300])
    rmse = float(np.sqrt(np.mean((model.predict(X[300:]) - y[300:]) ** 2)))
    with mlflow.start_run(experiment_id=registry.experiment_id(), tags={"mlflow.source.git.commit": commit}):
        mlflow.log_metric("rmse", rmse)
        if profile:
            releasegate.evidence.log_reference_profile(X[:300])
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=X[:5], registered_model_name=f"staging.{MODEL}"
        )
    return str(info.registered_model_version)


def test_drift_is_measured_against_the_logged_profile_on_the_models_own_inputs(team):
    X, y, inputs = team
    version = _log_version(X, y)
    X[300:].to_parquet(inputs / "2026-11-30.parquet")  # the newest day with data: yesterday
    d = build_dossier(bootstrap.app(), MODEL, version, GatePolicy())
    assert set(d.drift_psi) == set(X.columns) and d.drift_measure is None
    assert max(d.drift_psi.values()) < 0.2  # same population
    # what the drift rule needs beside the figures: n (142 held-out rows), m (the 300 profiled) and the bins
    assert (d.drift_sample.rows, d.drift_sample.reference_rows) == (142, 300)
    assert set(d.drift_sample.shares) == set(X.columns)
    calm = execute_gates(d, GatePolicy(), TODAY).gate("drift")
    assert calm.status == "pass" and "n=142 rows, m=300 reference rows" in calm.evidence, calm
    assert d.smoke["ok"] and d.smoke["rows"] == 5 and d.smoke["source"] == "its input_example"
    # reproducibility from the model's own requirements.txt (MLflow's inference pins them) and commit
    assert d.environment.requirements > 0 and d.environment.unpinned == []
    repro = execute_gates(d, GatePolicy(), TODAY).gate("reproducibility")
    assert repro.status == "pass" and f"commit {COMMIT[:12]}" in repro.evidence, repro

    shifted = X[300:].copy()
    shifted["bmi"] = shifted["bmi"] + 3 * X["bmi"].std()
    shifted.to_parquet(inputs / "2026-12-01.parquet")  # today's data moved: today wins over yesterday
    d = build_dossier(bootstrap.app(), MODEL, version, GatePolicy())
    assert max(d.drift_psi, key=d.drift_psi.__getitem__) == "bmi" and d.drift_psi["bmi"] > 1
    drift = execute_gates(d, GatePolicy(primary_metric="rmse", higher_is_better=False), TODAY).gate("drift")
    assert drift.status == "fail" and "bmi" in drift.evidence


def test_a_version_without_a_profile_inputs_or_commit_says_what_to_provide(team):
    X, y, inputs = team
    bare = _log_version(X, y, profile=False, commit="unknown")  # and trained outside a git checkout
    d = build_dossier(bootstrap.app(), MODEL, bare, GatePolicy())
    assert d.drift_psi == {} and d.drift_measure == PROFILE_MEASURE
    report = execute_gates(d, GatePolicy(), TODAY)
    assert report.gate("drift").measure == PROFILE_MEASURE
    repro = report.gate("reproducibility")
    assert repro.status == "fail" and repro.measure.startswith("train from a git checkout"), repro

    profiled = _log_version(X, y)  # no input file in the last 7 days
    d = build_dossier(bootstrap.app(), MODEL, profiled, GatePolicy())
    assert d.drift_psi == {} and "models[diabetes_b].current_inputs" in d.drift_measure
    assert "no file for business date" in d.drift_measure

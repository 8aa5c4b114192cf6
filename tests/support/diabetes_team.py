"""The diabetes team project of the team-model tests: a regression model (KPI ``rmse``) with Parquet inputs
per business date and labels from the team's own entry point; its fixtures (``deployed``, ``team``) and
helpers (``log_version``, ``two_approved_versions``). Shared by the team-model and business-calendar tests."""

import sys
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import yaml

from releasegate.adapters import mlflow_registry as registry
from releasegate.bootstrap import use_clock
from releasegate.clock import FixedClock
from tests.conftest import apply_deployments, approve_prod_version, cancel_unfinished_pool_runs, fast_capacity_policy

MODEL, PROD = "diab_team", "prod.diab_team"
DAYS = [date(2026, 11, 16) + timedelta(days=i) for i in range(5)]  # Mon..Fri
QUIET, DRIFTED = date(2026, 11, 23), date(2026, 11, 24)

TEAM_DATA = '''
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent


def labels(business_date):
    """The team's labels for a business date; waits while HANG names the date (so a test can kill it)."""
    hang = HERE / "HANG"
    while hang.exists() and hang.read_text().strip() == business_date.isoformat():
        time.sleep(0.2)
    return pd.read_parquet(HERE / "labels" / f"{business_date.isoformat()}.parquet")
'''

TEAM_FLOW = """
import numpy as np

import releasegate
from releasegate.evidence import log_sklearn_version


def fit_and_log(alpha, env="staging", tags=None):
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    data = load_diabetes(as_frame=True)
    X, y = data.data, data.target
    model = Ridge(alpha=alpha).fit(X[:300], y[:300])
    rmse = float(np.sqrt(np.mean((model.predict(X[300:]) - y[300:]) ** 2)))
    version = log_sklearn_version(
        model, "diab_team", env, X_train=X[:300], features=list(X.columns), input_example=X[:5],
        metrics={"rmse": rmse}, extra_tags=tags,
    )
    return version, rmse


@releasegate.governed("team-retrain", gate=True)
def team_retrain(reason: str = "requested", alpha: float = 0.01) -> dict:
    version, rmse = fit_and_log(alpha, tags={"retrain_reason": reason})
    return {"version": version, "rmse": rmse}
"""

TEAM_PREFECT_YAML = """
name: diab-team
deployments:
  - name: team-retrain
    entrypoint: team_flows.py:team_retrain
    work_pool: {name: releasegate, work_queue_name: bulk}
    concurrency_limit: {limit: 1, collision_strategy: ENQUEUE}
    runtime_policy:
      retries: 0
      retry_delay_seconds: 0
      timeout_seconds: 600
      late_run: {mode: run_late}
"""


@pytest.fixture(scope="module")
def deployed(prefect_harness):
    from flows.retrain import retrain
    from flows.rollback import rollback

    return apply_deployments({"rollback": (rollback, "critical"), "retrain": (retrain, "bulk")})


@pytest.fixture
def team(rg_home, tmp_path, monkeypatch, deployed, live_clock):
    """The team's folder: Parquet inputs and labels per business date, its data module, its manifest."""
    from sklearn.datasets import load_diabetes

    cancel_unfinished_pool_runs()
    fast_capacity_policy(tmp_path, monkeypatch)
    data = load_diabetes(as_frame=True)
    X, y = data.data, data.target
    folder = tmp_path / "team"
    (folder / "inputs").mkdir(parents=True)
    (folder / "labels").mkdir()
    (folder / "team_data.py").write_text(TEAM_DATA)
    (folder / "team_flows.py").write_text(TEAM_FLOW)
    (folder / "prefect.yaml").write_text(TEAM_PREFECT_YAML)
    for day in [*DAYS, QUIET, DRIFTED]:
        idx = np.random.default_rng(day.toordinal()).choice(len(X), size=300, replace=True)
        inputs = X.iloc[idx].reset_index(drop=True)
        if day == DRIFTED:  # the population moved: every feature three standard deviations up
            inputs = inputs + 3 * X.std()
        inputs.to_parquet(folder / "inputs" / f"{day.isoformat()}.parquet")
        y.iloc[idx].reset_index(drop=True).to_frame("target").to_parquet(folder / "labels" / f"{day}.parquet")
    manifest = {
        "models": [
            {
                "name": MODEL,
                "primary_kpi": {"metric": "rmse"},
                "task": "regression",
                "label_column": "target",
                "current_inputs": {"uri": str(folder / "inputs" / "{business_date}.parquet")},
                "labels": {"entrypoint": "team_data:labels"},
                "retrain": {"deployment": "team-retrain/team-retrain", "parameters": {"reason": "{reason_code}"}},
            }
        ]
    }
    (folder / "models.yaml").write_text(yaml.safe_dump(manifest))
    monkeypatch.setenv("RELEASEGATE_MODELS", str(folder / "models.yaml"))
    monkeypatch.syspath_prepend(str(folder))
    for module in ("team_data", "team_flows"):  # imported from this test's folder, not an earlier test's
        monkeypatch.delitem(sys.modules, module, raising=False)
    yield X, y, folder
    cancel_unfinished_pool_runs()


def log_version(X, y, alpha: float) -> str:
    """What the team's training code does: fit, log rmse, its reference profile and the model with a
    DataFrame input_example (so the signature names the columns); then the binary copy to prod."""
    from sklearn.linear_model import Ridge

    import releasegate.evidence

    mlflow = registry._mlflow()
    model = Ridge(alpha=alpha).fit(X[:300], y[:300])
    rmse = float(np.sqrt(np.mean((model.predict(X[300:]) - y[300:]) ** 2)))
    with mlflow.start_run(experiment_id=registry.experiment_id()):
        mlflow.log_metric("rmse", rmse)
        releasegate.evidence.log_reference_profile(X[:300])
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=X[:5], registered_model_name=f"staging.{MODEL}"
        )
    return registry.copy_to(f"staging.{MODEL}", str(info.registered_model_version), PROD)


def two_approved_versions(X, y) -> tuple[str, str]:
    """v1 promoted on 2026-11-17, v2 on 2026-11-19 (sealed records at those dates), v1 archived."""
    v1, v2 = log_version(X, y, 0.01), log_version(X, y, 0.02)
    with use_clock(FixedClock(datetime(2026, 11, 17, 12, tzinfo=UTC))):
        approve_prod_version(MODEL, v1)
    with use_clock(FixedClock(datetime(2026, 11, 19, 12, tzinfo=UTC))):
        approve_prod_version(MODEL, v2, previous_champion=v1)
    registry.set_alias(PROD, "archive", v1)
    registry.set_alias(PROD, "champion", v2)
    return v1, v2

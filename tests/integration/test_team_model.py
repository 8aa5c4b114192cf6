"""A team's own regression model under EOD monitoring, rollback and backfill, with no edit to releasegate.

scikit-learn's bundled diabetes data; KPI ``rmse`` (lower is better); the team's daily inputs are
Parquet files per business date and its labels come from its own Python entry point (a module in the
team's folder). Real Prefect (harness), real MLflow registry, real SQLite; only the clock is fixed where
the decision log's dates matter. The backfill is run in a separate process and killed with SIGKILL
while it waits on a date's data, then resumed.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import yaml
from prefect.client.schemas.objects import StateType

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.bootstrap import use_clock
from releasegate.clock import FixedClock
from tests.conftest import (
    ROOT,
    InProcessWorker,
    apply_deployments,
    approve_prod_version,
    cancel_unfinished_pool_runs,
    fast_capacity_policy,
)

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


def test_a_team_project_from_a_registry_event_to_its_own_retrain_and_promotion_by_its_lower_is_better_kpi(
    team, monkeypatch
):
    """The team's folder holds its own flow (``team_flows.team_retrain``, governed by its own prefect.yaml):
    a new dev version reaches the retrain gateway, which calls the team's deployment as a child run; the
    retrained candidate (rmse 53.1) beats the champion (56.5) by more than 2 % and is promoted; a worse
    one (69.8) is refused and nothing moves."""
    from prefect import get_client
    from prefect.flow_engine import run_flow

    from flows.promotion import promotion
    from flows.retrain import retrain
    from releasegate.adapters.registry_watch import watch_once
    from releasegate.tools.approval_driver import DemoApprover, demo_approvers_file

    _, _, folder = team
    import shutil

    import team_flows

    today = bootstrap.clock().now().date().isoformat()  # the drift gate reads the newest day's inputs
    for part in ("inputs", "labels"):
        shutil.copy(folder / part / f"{QUIET}.parquet", folder / part / f"{today}.parquet")

    monkeypatch.setenv("RELEASEGATE_APPROVERS", str(demo_approvers_file(folder)))
    team_flows.team_retrain.to_deployment(
        name="team-retrain", work_pool_name="releasegate", work_queue_name="bulk"
    ).apply()

    def promote(version):
        with DemoApprover(MODEL, version):
            return promotion(model_name=MODEL, candidate_version=version, requested_by="team-ml-engineer")

    v1, _ = team_flows.fit_and_log(1.0)
    first = promote(v1)
    assert first["outcome"] == "promote", first
    assert registry.alias_version(PROD, "champion") == first["prod_version"]

    team_flows.fit_and_log(0.01, env="dev")  # the registry event: a new dev version
    [created] = [x for x in watch_once() if x.status == "created" and x.deployment == "retrain"]
    with InProcessWorker({"team-retrain": team_flows.team_retrain}) as worker, get_client(sync_client=True) as c:
        state = run_flow(retrain, flow_run=c.read_flow_run(created.flow_run_id), return_type="state")
        assert state.is_completed(), state.message
        out = state.result()
        child = c.read_flow_run(out["retrain_job_run_id"])
    assert out["outcome"] == "retrain" and out["retrain_deployment"] == "team-retrain/team-retrain"
    assert worker.ran and child.parent_task_run_id is not None and child.state_type == StateType.COMPLETED
    assert child.parameters == {"reason": out["reason_code"]}
    retrained = str(max(int(v.version) for v in registry.client().search_model_versions(f"name='staging.{MODEL}'")))

    better = promote(retrained)
    assert better["outcome"] == "promote", better
    champion = registry.alias_version(PROD, "champion")
    assert champion == better["prod_version"] and registry.alias_version(PROD, "archive") == first["prod_version"]

    worse, rmse = team_flows.fit_and_log(10.0)
    refused = promote(worse)
    assert refused["outcome"] in ("hold", "reject") and rmse > 60
    assert any("kpi" in m.lower() for m in refused["measures_plan"]), refused
    assert registry.alias_version(PROD, "champion") == champion  # nothing moved


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


def test_eod_scores_the_teams_parquet_day_with_its_own_kpi_and_a_drifted_day_rolls_back(team):
    from flows.eod_scoring import eod_scoring
    from flows.rollback import rollback

    X, y, _ = team
    v1, v2 = two_approved_versions(X, y)
    quiet = eod_scoring(business_date=QUIET, model_name=MODEL)
    assert quiet["rows"] == 300 and quiet["failures"] == 0 and quiet["kpi"] == "rmse"
    assert quiet["label_source"] == "labels" and 30 < quiet["champion_metric"] < 80  # rmse of the target
    assert quiet["action"] == "monitor" and quiet["reason_code"] == "WITHIN_LIMITS", quiet
    assert quiet["max_psi"] < 0.2

    drifted = eod_scoring(business_date=DRIFTED, model_name=MODEL)
    assert drifted["max_psi"] > 0.3 and drifted["reason_code"] == "DRIFT_URGENT" and drifted["action"] == "rollback"
    with InProcessWorker({"rollback": rollback}):
        from tests.integration.test_eod_scoring import run_by_key, wait_final

        [rb] = run_by_key(f"rollback:monitoring:{MODEL}:{DRIFTED}:rollback:full")
        assert rb.parameters["business_date"] == DRIFTED.isoformat()
        fr = wait_final(rb.id)
    assert fr.state_type == StateType.COMPLETED, fr.state.message
    assert registry.alias_version(PROD, "champion") == v1
    rec = [r for r in bootstrap.decision_log().query(kind="rollback") if r.details["status"] == "final"][-1]
    on_day = rec.details["verification"]["business_date"]
    # the restored version, scored on the drifted day's own Parquet rows and measured on its labels
    assert rec.details["verified"] is True and on_day["rows"] == 300 and on_day["failures"] == 0
    assert on_day["kpi"] == "rmse" and on_day["value"] > 0


def _completed(days):
    return sorted(d for _, d in bootstrap.scheduling_store().completed([f"backfill:{MODEL}"], days))


def test_backfill_rescored_each_date_once_with_its_champion_killed_after_two_and_resumed(team):
    from prefect.settings import PREFECT_API_URL

    from flows.backfill import backfill

    X, y, folder = team
    v1, v2 = two_approved_versions(X, y)
    (folder / "HANG").write_text(DAYS[2].isoformat())  # the third date's labels do not arrive
    code = (
        "from datetime import date; from flows.backfill import backfill; "
        f"backfill(start_date=date.fromisoformat('{DAYS[0]}'), end_date=date.fromisoformat('{DAYS[-1]}'), "
        f"model_name='{MODEL}')"
    )
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(folder)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while _completed(DAYS) != DAYS[:2]:
            assert proc.poll() is None, f"the backfill process ended early (rc {proc.returncode})"
            assert time.monotonic() < deadline, f"two dates not done in 300 s: {_completed(DAYS)}"
            time.sleep(0.5)
        time.sleep(1.0)  # it is now waiting on the third date's labels
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert _completed(DAYS) == DAYS[:2]  # killed: two dates done, nothing else

    (folder / "HANG").unlink()
    out = backfill(start_date=DAYS[0], end_date=DAYS[-1], model_name=MODEL)
    status = {r["business_date"]: r["status"] for r in out["rows"]}
    assert status == {
        **{d.isoformat(): "already_done" for d in DAYS[:2]},
        **{d.isoformat(): "scored" for d in DAYS[2:]},
    }
    assert _completed(DAYS) == DAYS
    # each date with the version that was champion on it per the decision log (none before the 17th)
    version = {r["business_date"]: (r["version"], r["version_source"]) for r in out["rows"] if r["version"]}
    assert version[DAYS[2].isoformat()] == (v1, "decision log: champion on that date")
    assert version[DAYS[3].isoformat()][0] == version[DAYS[4].isoformat()][0] == v2
    for r in out["rows"][2:]:
        assert r["rows"] == 300 and r["failures"] == 0 and r["kpi"] == "rmse" and r["value"] > 0

    again = backfill(start_date=DAYS[0], end_date=DAYS[-1], model_name=MODEL)
    assert again["already_done"] == 5 and again["scored"] == 0  # none twice


@pytest.mark.parametrize(
    ("break_data", "rule"),
    [
        (lambda f: (f / "inputs" / f"{QUIET}.parquet").unlink(), f"no file for business date {QUIET}"),
        (
            lambda f: (
                __import__("pandas")
                .read_parquet(f / "inputs" / f"{QUIET}.parquet")
                .drop(columns=["bmi"])
                .to_parquet(f / "inputs" / f"{QUIET}.parquet")
            ),
            "missing column(s) bmi that the model's signature",
        ),
    ],
    ids=["missing-file", "missing-signature-column"],
)
def test_bad_data_for_a_date_fails_eod_naming_model_field_and_rule_and_changes_nothing(team, break_data, rule):
    from flows.eod_scoring import eod_scoring

    X, y, folder = team
    v1, v2 = two_approved_versions(X, y)
    break_data(folder)
    state = eod_scoring.with_options(retries=0)(business_date=QUIET, model_name=MODEL, return_state=True)
    assert state.is_failed()
    assert f"models[{MODEL}].current_inputs" in state.message and rule in state.message, state.message
    assert bootstrap.decision_log().query(kind="monitoring") == []  # no verdict, nothing requested
    assert registry.aliases(PROD) == {"champion": v2, "archive": v1}
    assert bootstrap.scheduling_store().completed(["eod-scoring"], [QUIET]) == set()

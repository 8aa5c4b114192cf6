"""A second team's model from its retrain job to its promotion, logged with MLflow's own API (issue 29).

The team's project is built by ``tests/teamkit.py`` in a temporary git checkout (nothing from ``examples/``):
scikit-learn's breast-cancer data in CSV files, a ``StandardScaler + LogisticRegression`` pipeline,
primary KPI ``f1``, logged with ``mlflow.sklearn.log_model(..., input_example=...)``,
``mlflow.log_input`` and ``releasegate.evidence.log_reference_profile``; its retrain flow is
``releasegate.governed`` by its own prefect.yaml and hands its version over with
``releasegate.submit_candidate``. The flow runs in a process of its own, as a worker runs it, with none
of MLflow's own variables set, in the team's folder. Real Prefect (harness), real MLflow registry.
"""

import os
import subprocess
import sys

import pytest
from prefect import get_client

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from tests.conftest import apply_deployments, cancel_unfinished_pool_runs, fast_capacity_policy
from tests.teamkit import (
    TRAINED_ON,
    artifacts_of,
    build_team,
    commit,
    git,
    pythonpath,
    result_of,
    run_as_a_worker,
)

pytestmark = pytest.mark.prefect

# Not the second team's ``bc_team``: both modules share the session's Prefect server, where intake's
# idempotency key (``staging-validated:<model>:<version>``) would hand this module that module's run.
MODEL, STAGING, PROD = "bc_lineage", "staging.bc_lineage", "prod.bc_lineage"


@pytest.fixture
def team(rg_home, tmp_path, monkeypatch, prefect_harness, live_clock):
    """The team's checkout: its flows, prefect.yaml and CSV data, committed; its manifest entry."""
    from sklearn.datasets import load_breast_cancer

    from flows.promotion import promotion

    apply_deployments({"promotion": (promotion, "critical")})
    cancel_unfinished_pool_runs()
    fast_capacity_policy(tmp_path, monkeypatch)
    monkeypatch.setenv("RELEASEGATE_APPROVAL_POLL_SECONDS", "1")
    folder = tmp_path / "bc-team"
    monkeypatch.setenv("RELEASEGATE_MODELS", str(build_team(folder, model=MODEL)))
    today = bootstrap.clock().now().date()  # the drift gate reads the newest business date's inputs
    load_breast_cancer(as_frame=True).data.to_csv(folder / "inputs" / f"{today}.csv", index=False)
    commit(folder)
    yield folder
    cancel_unfinished_pool_runs()


def test_a_retrain_logged_with_mlflows_own_api_reaches_releasegate_and_is_promoted_with_its_commit(team, monkeypatch):
    """Items 1, 2 and 8 of issue 29: the version lands in releasegate's registry (not ./mlflow.db of the
    team's folder), its run carries the team's commit, submit_candidate starts the promotion, and the
    promotion passes reproducibility, tags the prod version with that commit and shows the data's date."""
    from prefect.flow_engine import run_flow

    from flows.promotion import promotion
    from releasegate.testing.approval_driver import DemoApprover, demo_approvers_file

    head = git(team, "rev-parse", "HEAD")
    out = result_of(run_as_a_worker(team, "bc_flows.bc_retrain(reason='drift')"))
    assert not (team / "mlflow.db").exists(), "the team's model went to MLflow's default store"
    version = out["version"]
    mv = registry.client().get_model_version(STAGING, version)  # in releasegate's registry
    tags = registry.client().get_run(mv.run_id).data.tags
    assert tags["mlflow.source.git.commit"] == head and tags["git_sha"] == head
    assert tags["releasegate.deployment"] == "bc-retrain"
    assert registry.source_commit(STAGING, version) == head

    # submit_candidate: the verdict recorded, the staging alias set, one promotion run created
    assert registry.alias_version(STAGING, "staging") == version
    handed = bootstrap.decision_log().get(out["decision_id"])
    assert handed.decision_kind.value == "retrain" and handed.decision_outcome.value == "accept"
    assert handed.details["trigger"] == "drift" and handed.actor == "bc-team:bc-retrain"
    assert out["promotion"]["status"] == "created" and out["promotion"]["deployment"] == "promotion"
    monkeypatch.setenv("RELEASEGATE_APPROVERS", str(demo_approvers_file(team)))
    with DemoApprover(MODEL, version), get_client(sync_client=True) as c:
        state = run_flow(promotion, flow_run=c.read_flow_run(out["promotion"]["flow_run_id"]), return_type="state")
    assert state.is_completed() and state.name == "Completed", state.message
    result = state.result()
    assert result["outcome"] == "promote", result
    prod_version = result["prod_version"]
    assert registry.version_tags(PROD, prod_version)["git_sha"] == head

    arts = artifacts_of(state.state_details.flow_run_id)  # on the promotion run itself, not its subflows
    report, dossier = arts["gate-report-bc-lineage"], arts["dossier-bc-lineage"]
    assert "reproducibility" in report and f"commit {head[:12]}" in report, report
    assert f"data {TRAINED_ON}" in dossier and "breast_cancer@" in dossier


def test_a_run_whose_environment_names_another_mlflow_is_refused_before_it_trains(team):
    """MLFLOW_TRACKING_URI in the worker's environment names the team's own file: the run is refused,
    saying what to set, and nothing is trained or logged anywhere."""
    from prefect.settings import PREFECT_API_URL

    own = f"sqlite:///{team / 'own-mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") or k == "MLFLOW_DISABLE_TELEMETRY"}
    env |= {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": pythonpath(team), "MLFLOW_TRACKING_URI": own}
    code = "import bc_flows\ns = bc_flows.bc_retrain(return_state=True)\nprint('STATE', s.type.value, s.message)"
    done = subprocess.run([sys.executable, "-c", code], cwd=team, env=env, capture_output=True, text=True)
    [line] = [ln for ln in done.stdout.splitlines() if ln.startswith("STATE ")] or [done.stdout + done.stderr]
    want = bootstrap.settings().resolved_tracking_uri
    assert line.startswith("STATE FAILED") and f"MLFLOW_TRACKING_URI is '{own}'" in line, line
    assert f"Set MLFLOW_TRACKING_URI={want}" in line
    assert not (team / "own-mlflow.db").exists()
    assert registry.alias_version(STAGING, "staging") is None
    [refusal] = bootstrap.decision_log().query(kind="refusal")
    assert refusal.decision_rationale.startswith("MLFLOW_TRACKING_URI is")


def test_a_job_that_points_mlflow_elsewhere_is_refused_naming_what_to_set(team, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # what the job sets is put back afterwards
    monkeypatch.syspath_prepend(str(team))
    monkeypatch.chdir(team)
    sys.modules.pop("bc_flows", None)
    import bc_flows

    state = bc_flows.bc_elsewhere(return_state=True)
    assert state.is_failed(), state.message
    assert "this run pointed MLflow at" in state.message and "own-mlflow.db" in state.message
    assert f"set MLFLOW_TRACKING_URI={bootstrap.settings().resolved_tracking_uri}" in state.message
    [refusal] = bootstrap.decision_log().query(kind="refusal")  # recorded; the job's own code went on to log
    assert refusal.decision_outcome.value == "reject" and "own-mlflow.db" in refusal.decision_rationale


def test_the_reproducibility_gate_reads_git_sha_where_its_measure_says_to_put_it(rg_home):
    """The measure says "tag the run git_sha": a version whose training run has only that tag (no
    ``mlflow.source.git.commit``, as a worker's run; no tags on the version) passes reproducibility."""
    from datetime import UTC, datetime

    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from releasegate.policy.gates import Dossier, GatePolicy, VersionFacts, execute_gates

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    mlflow = registry._mlflow()
    sha = "0123456789abcdef0123456789abcdef01234567"
    with mlflow.start_run(experiment_id=registry.experiment_id()) as run:
        mlflow.set_tag("git_sha", sha)
        info = mlflow.sklearn.log_model(pipe, name="model", input_example=X[:5], registered_model_name=STAGING)
    c = registry.client()
    if "mlflow.source.git.commit" in c.get_run(run.info.run_id).data.tags:  # MLflow's guess from pytest's file
        c.delete_tag(run.info.run_id, "mlflow.source.git.commit")
    version = str(info.registered_model_version)
    assert registry.version_tags(STAGING, version) == {}

    env = registry.environment_facts(STAGING, version)
    assert env.source_commit == sha
    now = datetime.now(UTC)
    d = Dossier(
        model=MODEL,
        candidate=VersionFacts(name=STAGING, version=version),
        champion=None,
        archive_version=None,
        environment=env,
        built_at=now,
    )
    gate = execute_gates(d, GatePolicy(), now).gate("reproducibility")
    assert gate.status == "pass" and f"commit {sha[:12]}" in gate.evidence

"""MLflow's own variables for releasegate's store (issue 29, item 1) and the lineage a governed run gives
the MLflow runs inside it (item 2): the env file and workers of the stack, and ``mlflow_scope``."""

import json
import os
import subprocess

import pytest

from releasegate.adapters import mlflow_scope


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RELEASEGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELEASEGATE_MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_an_environment_naming_another_store_is_a_conflict_that_says_what_to_set(home, monkeypatch):
    assert mlflow_scope.conflict() is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    why = mlflow_scope.conflict()
    assert why is not None and "MLFLOW_TRACKING_URI is 'sqlite:///mlflow.db'" in why
    assert "Set MLFLOW_TRACKING_URI=http://127.0.0.1:5999" in why
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999/")  # the same store
    assert mlflow_scope.conflict() is None


def test_runs_inside_a_governed_run_get_the_flows_own_commit_and_the_context_is_put_back(home, monkeypatch):
    repo = home / "team"
    repo.mkdir()
    ident = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    (repo / "flows.py").write_text("x = 1\n")
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=os.environ | ident)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    monkeypatch.setenv("MLFLOW_RUN_CONTEXT", json.dumps({"team": "bc"}))  # an operator's own context stays

    with mlflow_scope.run_scope(str(repo / "flows.py"), "run-1", "bc-retrain"):
        tags = json.loads(os.environ["MLFLOW_RUN_CONTEXT"])
        assert tags == {
            "team": "bc",
            "releasegate.flow_run_id": "run-1",
            "releasegate.deployment": "bc-retrain",
            "mlflow.source.git.commit": head,
            "git_sha": head,
        }
        assert os.environ["MLFLOW_TRACKING_URI"] == os.environ["MLFLOW_REGISTRY_URI"] == "http://127.0.0.1:5999"
        assert mlflow_scope.active_commit() == head
    assert json.loads(os.environ["MLFLOW_RUN_CONTEXT"]) == {"team": "bc"}
    assert mlflow_scope.active_commit() is None
    assert mlflow_scope.conflict() is None  # what releasegate set itself is not an operator's choice


def test_a_flow_outside_a_git_checkout_records_no_commit(home):
    (home / "loose.py").write_text("x = 1\n")
    assert mlflow_scope.source_commit(home / "loose.py") is None

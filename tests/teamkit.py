"""A second team's project, built in a temporary git checkout (nothing from ``examples/``), for tests.

scikit-learn's breast-cancer data in CSV files, a ``StandardScaler + LogisticRegression`` pipeline,
primary KPI ``f1``, logged with ``mlflow.sklearn.log_model(..., input_example=...)``, ``mlflow.log_input``
and ``releasegate.evidence.log_reference_profile``; its retrain flow is ``releasegate.governed`` by its
own prefect.yaml and hands its version over with ``releasegate.submit_candidate``. Helpers run the team's
code as a worker runs it: in a process of its own, in the team's folder, with none of MLflow's own
variables set. A support module, not a test module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import yaml

MODEL, STAGING, PROD = "bc_team", "staging.bc_team", "prod.bc_team"
TRAINED_ON = date(2026, 11, 20)

TEAM_FLOWS = '''
from pathlib import Path

import mlflow
import pandas as pd
from prefect.runtime import flow_run
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import releasegate
from releasegate.evidence import log_reference_profile

HERE = Path(__file__).parent
MODEL = "bc_team"


def train_and_log(business_date: str, C: float = 1.0, env: str = "staging"):
    """The team's training code, with MLflow's own API only."""
    csv = HERE / "data" / f"train-{business_date}.csv"
    df = pd.read_csv(csv)
    X, y = df.drop(columns="target"), df["target"]
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000)).fit(X[:400], y[:400])
    f1 = float(f1_score(y[400:], pipe.predict(X[400:])))
    mlflow.set_experiment("bc-team")
    with mlflow.start_run():
        mlflow.log_input(mlflow.data.from_pandas(df, source=str(csv), name="breast_cancer"), context="training")
        mlflow.log_metric("f1", f1)
        log_reference_profile(X[:400])
        info = mlflow.sklearn.log_model(
            pipe, name="model", input_example=X[:5], registered_model_name=f"{env}.{MODEL}"
        )
    return str(info.registered_model_version), f1


@releasegate.governed("bc-retrain", log_prints=True)
def bc_retrain(reason: str = "requested", business_date: str = "2026-11-20", C: float = 1.0) -> dict:
    version, f1 = train_and_log(business_date, C)
    handed = releasegate.submit_candidate(
        MODEL, version, producer="bc-team:bc-retrain", checks_ok=f1 >= 0.8,
        summary=f"f1 {f1:.4f}", flow_run_id=str(flow_run.id), trigger=reason,
    )
    return {"version": version, "f1": f1, **handed}


@releasegate.governed("bc-retrain", log_prints=True)
def bc_elsewhere(business_date: str = "2026-11-20") -> str:
    """A job that points MLflow at a store of its own before logging."""
    mlflow.set_tracking_uri(f"sqlite:///{HERE / 'own-mlflow.db'}")
    return train_and_log(business_date)[0]
'''

TEAM_PREFECT_YAML = """
name: bc-team
deployments:
  - name: bc-retrain
    entrypoint: bc_flows.py:bc_retrain
    work_pool: {name: releasegate, work_queue_name: bulk}
    concurrency_limit: {limit: 1, collision_strategy: ENQUEUE}
    runtime_policy:
      retries: 1
      retry_delay_seconds: 0
      timeout_seconds: 900
      late_run: {mode: run_late}
"""


def git(folder: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "bc", "GIT_AUTHOR_EMAIL": "bc@example.org"}
    env |= {"GIT_COMMITTER_NAME": "bc", "GIT_COMMITTER_EMAIL": "bc@example.org"}
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True, env=os.environ | env
    )
    return done.stdout.strip()


def breast_cancer() -> Any:
    """The data set, features and ``target``, shuffled once (rows 0..399 train, the rest validate)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    return data.data.assign(target=data.target).sample(frac=1.0, random_state=7).reset_index(drop=True)


def build_team(folder: Path, model_entry: dict[str, Any] | None = None, model: str = MODEL) -> Path:
    """The team's checkout in ``folder``: its flows, prefect.yaml, training CSV and manifest (``models.yaml``,
    its entry updated with ``model_entry``). Not committed yet: add the inputs, then ``commit``. Returns the
    manifest (point RELEASEGATE_MODELS at it). ``model``: the registered model's name; a test module that
    shares the Prefect server with another team's module names its own (one model name, one promotion run
    per version on a server: intake's idempotency key)."""
    (folder / "data").mkdir(parents=True)
    (folder / "inputs").mkdir()
    flows = textwrap.dedent(TEAM_FLOWS).replace(f'MODEL = "{MODEL}"', f"MODEL = {model!r}")
    (folder / "bc_flows.py").write_text(flows)
    (folder / "prefect.yaml").write_text(TEAM_PREFECT_YAML)
    breast_cancer().to_csv(folder / "data" / f"train-{TRAINED_ON}.csv", index=False)
    entry = {
        "name": model,
        "primary_kpi": {"metric": "f1"},
        "task": "classification",
        "current_inputs": {"uri": str(folder / "inputs" / "{business_date}.csv")},
        "retrain": {"deployment": "bc-retrain/bc-retrain", "parameters": {"reason": "{reason_code}"}},
    }
    manifest = folder / "models.yaml"
    manifest.write_text(yaml.safe_dump({"models": [entry | (model_entry or {})]}, sort_keys=False))
    (folder / ".gitignore").write_text("*.db\nmlruns/\nmlartifacts/\n__pycache__/\n")
    return manifest


def commit(folder: Path, message: str = "bc team retrain") -> str:
    """``git init`` (once), add everything, commit; returns the commit."""
    if not (folder / ".git").exists():
        git(folder, "init", "-q")
    git(folder, "add", ".")
    git(folder, "commit", "-q", "-m", message)
    return git(folder, "rev-parse", "HEAD")


def artifacts_of(flow_run_id: Any) -> dict[str, Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as c:
        found = c.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a.data for a in found}


def pythonpath(folder: Path) -> str:
    """The team's package importable, as where its worker runs (the rest of the path kept)."""
    return os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)


def worker_env(folder: Path, **extra: str) -> dict[str, str]:
    """A worker's environment: the Prefect API and releasegate's settings, none of MLflow's own variables."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") or k == "MLFLOW_DISABLE_TELEMETRY"}
    return env | {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": pythonpath(folder)} | extra


def run_as_a_worker(folder: Path, call: str) -> subprocess.CompletedProcess:
    """``call`` of the team's flow module in a process of its own, in the team's folder, as a worker runs a
    flow: the Prefect API and releasegate's settings in its environment, none of MLflow's own variables."""
    code = f"import json, bc_flows\nprint('RESULT', json.dumps({call}))"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=folder, env=worker_env(folder), capture_output=True, text=True
    )


def result_of(done: subprocess.CompletedProcess) -> Any:
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (done.stdout + done.stderr)[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


WORKER = """
import importlib, sys, time
from releasegate.testing.inprocess_worker import InProcessWorker

flows = {}
for arg in sys.argv[1:]:
    deployment, _, target = arg.partition("=")
    module, _, attr = target.partition(":")
    flows[deployment] = getattr(importlib.import_module(module), attr)
with InProcessWorker(flows, poll_seconds=0.5) as worker:
    print("SERVING", " ".join(flows), flush=True)
    while True:
        time.sleep(1)
        for e in worker.errors:
            print("ERROR", e, flush=True)
        worker.errors.clear()
"""


def worker_process(folder: Path, log: Path, deployments: dict[str, str]) -> subprocess.Popen:
    """A worker in a process of its own (in the team's folder, its package importable), serving each
    deployment (``flow/deployment`` or a bare name) with ``module:flow``; stop it with ``os.killpg``.
    releasegate's own flows (``flows.…``) are importable too, as where releasegate's deployments run."""
    args = [f"{name}={target}" for name, target in deployments.items()]
    out = log.open("w")
    env = worker_env(folder)
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(Path(__file__).resolve().parents[1])])
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *args],
        cwd=folder,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

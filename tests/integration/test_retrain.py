"""Retrain on the Prefect test harness with a real MLflow registry: webhooks, watcher, gateway, job.

Where a test needs a deployment's runs executed, ``InProcessWorker`` plays the worker: it picks the
deployment's scheduled runs through the API and runs them with Prefect's engine (``run_flow``).
"""

import json
import os
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from credit_example.training import log_and_register, train
from prefect import flow, get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.client.schemas.objects import StateType
from starlette.testclient import TestClient

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.adapters.prefect_query import read_all_flow_runs
from releasegate.policy.webhooks import sign
from tests.conftest import (
    ROOT,
    InProcessWorker,
    apply_deployments,
    cancel_unfinished_pool_runs,
    fast_capacity_policy,
    govern,
)

pytestmark = pytest.mark.prefect
SECRET = "test-secret"


@pytest.fixture(scope="module")
def deployed(prefect_harness):
    from credit_example.retrain_job import retrain_job

    from flows.promotion import promotion
    from flows.retrain import retrain

    return apply_deployments(
        {"retrain": (retrain, "bulk"), "retrain-job": (retrain_job, "bulk"), "promotion": (promotion, "critical")}
    )


@pytest.fixture
def home(rg_home, tmp_path, monkeypatch, deployed):
    yield _home(rg_home, tmp_path, monkeypatch)
    cancel_unfinished_pool_runs()  # promotion runs started by the job stay paused otherwise


def _home(rg_home, tmp_path, monkeypatch):
    fast_capacity_policy(tmp_path, monkeypatch)
    monkeypatch.setenv("RELEASEGATE_WEBHOOK_SECRET", SECRET)
    return rg_home


@pytest.fixture
def clock(live_clock):
    return live_clock


def runs_of(deployment: str, key_prefix: str = "") -> list:
    with get_client(sync_client=True) as c:
        runs = read_all_flow_runs(c, deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])))
    return [r for r in runs if (r.idempotency_key or "").startswith(key_prefix)]


def delivery(body: dict, delivery_id: str, ts: datetime | None = None, secret: str = SECRET):
    text = json.dumps(body)
    stamp = str(int((ts or datetime.now(UTC)).timestamp()))
    return {
        "content": text,
        "headers": {
            "Content-Type": "application/json",
            "X-MLflow-Delivery-Id": delivery_id,
            "X-MLflow-Timestamp": stamp,
            "X-MLflow-Signature": sign(secret, delivery_id, stamp, text),
        },
    }


def created_body(name: str, version: str) -> dict:
    return {
        "entity": "model_version",
        "action": "created",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"name": name, "version": version, "source": "models:/m-x", "run_id": None, "tags": {}},
    }


# --------------------------------------------------------------------------------------- webhook
def test_signed_webhook_creates_exactly_one_retrain_run(home, clock):
    from releasegate.adapters.webhook_app import create_app

    client = TestClient(create_app(bootstrap.app))
    first = client.post("/webhooks/mlflow", **delivery(created_body("dev.webhooked", "1"), "del-1"))
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["status"] == "created" and body["deployment"] == "retrain"
    replay = client.post("/webhooks/mlflow", **delivery(created_body("dev.webhooked", "1"), "del-1"))
    assert replay.status_code == 409 and "replay" in replay.json()["error"]
    # A new delivery of the same fact (another delivery id) is a duplicate of the same run.
    again = client.post("/webhooks/mlflow", **delivery(created_body("dev.webhooked", "1"), "del-2"))
    assert again.status_code == 200 and again.json()["flow_run_id"] == body["flow_run_id"]
    [run] = runs_of("retrain", "retrain:model-version:dev.webhooked:1")
    assert str(run.id) == body["flow_run_id"]
    assert run.parameters == {
        "model_name": "webhooked",
        "trigger": "registry_event",
        "version": "1",
        "source_environment": "dev",
    }
    # A version registered in staging (by releasegate) is acknowledged but starts nothing.
    staged = client.post("/webhooks/mlflow", **delivery(created_body("staging.webhooked", "1"), "del-3"))
    assert staged.status_code == 202 and staged.json()["status"] == "ignored"
    assert runs_of("retrain", "retrain:model-version:staging.webhooked") == []


def test_forged_old_and_malformed_deliveries_get_4xx_and_create_nothing(home, clock):
    from releasegate.adapters.webhook_app import create_app

    client = TestClient(create_app(bootstrap.app))
    forged = client.post("/webhooks/mlflow", **delivery(created_body("dev.forged", "1"), "f-1", secret="guess"))
    assert forged.status_code == 401 and "Signature" in forged.json()["error"]
    old = client.post(
        "/webhooks/mlflow",
        **delivery(created_body("dev.forged", "1"), "f-2", ts=datetime.now(UTC) - timedelta(minutes=10)),
    )
    assert old.status_code == 401 and "tolerance" in old.json()["error"]
    text = "{not json"
    stamp = str(int(datetime.now(UTC).timestamp()))
    malformed = client.post(
        "/webhooks/mlflow",
        content=text,
        headers={
            "X-MLflow-Delivery-Id": "f-3",
            "X-MLflow-Timestamp": stamp,
            "X-MLflow-Signature": sign(SECRET, "f-3", stamp, text),
        },
    )
    assert malformed.status_code == 400
    assert runs_of("retrain", "retrain:model-version:dev.forged") == []
    assert bootstrap.decision_log().query(kind="event") == []
    # None of them burnt its delivery id: the genuine delivery still goes through.
    ok = client.post("/webhooks/mlflow", **delivery(created_body("dev.forged", "1"), "f-1"))
    assert ok.status_code == 201


# --------------------------------------------------------------------------------------- watcher
def test_watcher_sends_one_event_per_new_version_across_restarts(home, clock):
    from releasegate.adapters.registry_watch import watch_once
    from releasegate.store.db import dispose_engines

    log_and_register(train(seed=1, rows=500), "watched", "dev")
    first = watch_once(bootstrap.app())
    assert [(r.status, r.deployment) for r in first] == [("created", "retrain")]
    assert watch_once(bootstrap.app()) == []
    log_and_register(train(seed=2, rows=500), "watched", "dev")
    dispose_engines()  # a restart: new engines, the cursor comes from the database
    second = watch_once(bootstrap.app())
    assert [(r.status, r.deployment) for r in second] == [("created", "retrain")]
    assert watch_once(bootstrap.app()) == []
    assert len(runs_of("retrain", "retrain:model-version:dev.watched:")) == 2

    # The webhook delivering the same version later is answered as a duplicate.
    from releasegate.adapters.webhook_app import create_app

    late = TestClient(create_app(bootstrap.app)).post(
        "/webhooks/mlflow", **delivery(created_body("dev.watched", "2"), "w-1")
    )
    assert late.status_code == 200 and late.json()["status"] == "duplicate"


# ------------------------------------------------------------------------------- gateway and job
def test_retrain_calls_the_job_as_a_sub_run_which_registers_a_staging_version_with_lineage(home, clock):
    from credit_example.retrain_job import retrain_job

    from flows.retrain import retrain

    with InProcessWorker({"retrain-job": retrain_job}) as worker:
        state = retrain(
            model_name="fresh",
            trigger="registry_event",
            version="1",
            source_environment="dev",
            wait_timeout_seconds=180,
            return_state=True,
        )
    assert state.is_completed(), state.message
    out = state.result()
    assert out["outcome"] == "retrain" and out["reason_code"] == "NO_CHAMPION"
    child_id = out["retrain_job_run_id"]
    assert worker.ran and str(worker.ran[0]) == child_id
    with get_client(sync_client=True) as c:
        child = c.read_flow_run(child_id)
        parent_task = c.read_task_run(child.parent_task_run_id)
    assert child.state_type == StateType.COMPLETED
    assert parent_task.flow_run_id is not None  # the job is linked as a child of the gateway's run

    version = out["job"]["version"]
    mv = registry.client().get_model_version("staging.fresh", version)
    for tag in ("git_sha", "data_timestamp", "env_fingerprint", "run_id", "retrain_reason", "retrain_flow_run"):
        assert mv.tags.get(tag), tag
    assert mv.tags["retrain_flow_run"] == child_id and "NO_CHAMPION" in mv.tags["retrain_reason"]
    assert registry.alias_version("staging.fresh", "staging") == version
    # "staging version validated" went through event intake and started one promotion run.
    [promo] = runs_of("promotion", f"promotion:staging-validated:fresh:{version}")
    assert promo.parameters["candidate_version"] == version
    kinds = [
        (r.decision_kind.value, r.details.get("outcome") or r.details.get("version"))
        for r in bootstrap.decision_log().query(kind="retrain")
    ]
    assert kinds == [("retrain", "retrain"), ("retrain", version)]


@flow(name="team-train")
def team_train(model: str, why: str, version: str = "") -> dict:
    """A team's own retrain flow: releasegate only calls it (it records nothing of its own)."""
    return {"model": model, "why": why, "version": version}


def _manifest(tmp_path, monkeypatch, model: str, deployment: str) -> None:
    path = tmp_path / "models.yaml"
    entry = {
        "name": model,
        "primary_kpi": {"metric": "rmse"},
        "task": "regression",
        "retrain": {
            "deployment": deployment,
            "parameters": {"model": "{model_name}", "why": "{reason_code}", "version": "{version}"},
        },
    }
    path.write_text(yaml.safe_dump({"models": [entry]}))
    monkeypatch.setenv("RELEASEGATE_MODELS", str(path))


def test_a_models_own_retrain_deployment_is_called_with_its_templated_parameters(home, clock, tmp_path, monkeypatch):
    from flows.retrain import retrain

    team_train.to_deployment(name="team-train", work_pool_name="releasegate", work_queue_name="bulk").apply()
    _manifest(tmp_path, monkeypatch, "team_model", "team-train/team-train")
    with InProcessWorker({"team-train": team_train}) as worker:
        state = retrain(
            model_name="team_model",
            trigger="registry_event",
            version="4",
            wait_timeout_seconds=180,
            return_state=True,
        )
    assert state.is_completed(), state.message
    out = state.result()
    assert out["outcome"] == "retrain" and out["retrain_deployment"] == "team-train/team-train"
    assert worker.ran and str(worker.ran[0]) == out["retrain_job_run_id"] and out["job"] is None
    with get_client(sync_client=True) as c:
        child = c.read_flow_run(out["retrain_job_run_id"])
    assert child.parameters == {"model": "team_model", "why": "NO_CHAMPION", "version": "4"}
    assert child.state_type == StateType.COMPLETED and child.parent_task_run_id is not None


def test_a_retrain_deployment_that_does_not_exist_is_refused_before_anything_starts(home, clock, tmp_path, monkeypatch):
    from flows.retrain import retrain

    _manifest(tmp_path, monkeypatch, "ghost_model", "team-train/not-deployed")
    # Without the deployment's retry (one more attempt after 300 s, which would refuse again the same way).
    state = retrain.with_options(retries=0)(
        model_name="ghost_model", trigger="registry_event", version="1", return_state=True
    )
    assert state.is_failed()
    assert "models[ghost_model].retrain.deployment" in state.message and "not deployed" in state.message
    log = bootstrap.decision_log()
    assert log.query(kind="retrain", subject="model:ghost_model") == []  # no retrain decided
    [refusal] = log.query(kind="refusal", subject="model:ghost_model")
    assert refusal.details["field"] == "models[ghost_model].retrain.deployment"
    assert runs_of("not-deployed") == []


def test_gateway_outcomes_are_recorded_without_calling_the_job(home, clock, monkeypatch, tmp_path):
    from flows.retrain import retrain

    govern(monkeypatch, tmp_path, "steady")  # its data sources: the generated demo portfolio's
    log_and_register(train(seed=21), "steady", "staging")
    prod_v = registry.copy_to("staging.steady", "1", "prod.steady")
    registry.set_alias("prod.steady", "champion", prod_v)
    # Thresholds in a policy file (as an operator would): any measurable drift is "plan", nothing is
    # "urgent", so the outcome does not depend on the day's generated batch.
    (tmp_path / "retrain.yaml").write_text(
        yaml.safe_dump({"psi_urgent": 5.0, "psi_plan": 0.05, "kpi_drop_urgent": 0.9, "kpi_drop_plan": 0.5})
    )
    monkeypatch.setenv("RELEASEGATE_RETRAIN_POLICY", str(tmp_path / "retrain.yaml"))
    calm = retrain(model_name="steady", trigger="drift", wait_timeout_seconds=30)
    assert calm["outcome"] == "no_retrain" and calm["reason_code"] == "WITHIN_LIMITS"
    monkeypatch.setenv("RELEASEGATE_MARKET_DRIFT", "0.3")  # the generator's drift knob: a regime shift
    planned = retrain(model_name="steady", trigger="drift", wait_timeout_seconds=30)
    assert planned["outcome"] == "defer" and planned["reason_code"] == "RETRAIN_PLANNED"
    recs = bootstrap.decision_log().query(kind="retrain", subject="model:steady")
    assert [r.details["reason_code"] for r in recs] == ["WITHIN_LIMITS", "RETRAIN_PLANNED"]
    assert recs[1].details["max_psi"] > 0.05 > recs[0].details["max_psi"]
    assert recs[1].details["next_evaluation_at"] == planned["next_evaluation_at"]
    assert not [r for r in runs_of("retrain-job") if r.parameters.get("model_name") == "steady"]


# ------------------------------------------------------------------------- end to end, real server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not come up")


def test_end_to_end_through_a_real_mlflow_server_webhook(home, clock, tmp_path):
    import uvicorn
    from mlflow import MlflowClient
    from mlflow.entities.webhook import WebhookEvent

    from releasegate.adapters.webhook_app import create_app

    hook_port, ml_port = _free_port(), _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(bootstrap.app), host="127.0.0.1", port=hook_port, log_level="warning")
    )
    hook_thread = threading.Thread(target=server.run, daemon=True)
    hook_thread.start()
    env = {
        **os.environ,
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "_MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",  # MLflow < 3.17
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",  # MLflow >= 3.17 dropped the underscore
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    mlflow_exe = str(ROOT / ".venv" / "bin" / "mlflow") if (ROOT / ".venv" / "bin" / "mlflow").exists() else "mlflow"
    proc = subprocess.Popen(
        [
            mlflow_exe,
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'mlsrv.db'}",
            "--artifacts-destination",
            str(tmp_path / "mlsrv-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(ml_port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=open(tmp_path / "mlflow-server.log", "w"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_http(f"http://127.0.0.1:{ml_port}/health")
        _wait_http(f"http://127.0.0.1:{hook_port}/healthz")
        ml = MlflowClient(tracking_uri=f"http://127.0.0.1:{ml_port}", registry_uri=f"http://127.0.0.1:{ml_port}")
        ml.create_webhook(
            name="releasegate",
            url=f"http://127.0.0.1:{hook_port}/webhooks/mlflow",
            events=[WebhookEvent("model_version", "created")],
            secret=SECRET,
        )
        ml.create_registered_model("dev.e2e")
        # MLflow >= 3.17 checks a version's source: a runs:/ URI must name the run it comes from.
        src_run = ml.create_run(ml.create_experiment("e2e")).info.run_id
        ml.create_model_version("dev.e2e", source=f"runs:/{src_run}/model", run_id=src_run)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not runs_of("retrain", "retrain:model-version:dev.e2e:1"):
            time.sleep(0.5)
        [run] = runs_of("retrain", "retrain:model-version:dev.e2e:1")
        assert run.parameters["model_name"] == "e2e" and run.parameters["trigger"] == "registry_event"
        [rec] = [r for r in bootstrap.decision_log().query(kind="event") if r.details.get("flow_run_id") == str(run.id)]
        assert rec.actor == "producer:mlflow-webhook"
    finally:
        proc.terminate()
        proc.wait(20)
        server.should_exit = True
        hook_thread.join(10)

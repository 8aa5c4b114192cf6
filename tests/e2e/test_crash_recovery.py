"""A worker killed mid-run, on the real local stack (`releasegate up`): the run is marked Crashed by
Prefect's zombie automation, the gateway stops counting it, `releasegate up` starts the worker again,
and the crashed backfill is retried under its runtime policy and resumes at the first date not done.

The stack is the one `releasegate up` starts (Prefect server on SQLite, MLflow server, webhook receiver,
`infra up`, `deploy`, one `prefect worker start`), on free loopback ports under a temporary home, with
the Prefect scheduler off (no scheduled run may interfere; the deferral-sweeper's crash retry is called
by the test, as the sweeper would every minute). The backfill's data source is the credit example's,
held at one date until the test lets it go, so the kill lands mid-run: after two dates are done. The
worker and the flow-run process it started are killed with SIGKILL, as when their machine dies.
Every wait is for a condition, with a generous deadline.
"""

import json
import os
import signal
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from releasegate.store.db import dispose_engines
from tests.conftest import ROOT, drain_prefect_services, govern, prod_version

pytestmark = [pytest.mark.prefect]

MODEL = "crashy"
DAYS = [date(2026, 11, 16) + timedelta(days=i) for i in range(5)]  # Mon..Fri
HELD = DAYS[2]
DEADLINE_S = 600  # the give-up time of each wait, not a speed requirement
ZOMBIE_WINDOW_S = 120  # deployments/automations.yaml: releasegate-crash-zombie-flow-runs `within`

BARRIER = '''
import os
import time
from pathlib import Path

from credit_example import data

HERE = Path({folder!r})


def current_inputs(business_date):
    """The credit example's inputs; held at {held} while the file `hold` exists (the test kills the run there)."""
    if business_date.isoformat() == {held!r} and (HERE / "hold").exists():
        (HERE / "reached").write_text(str(os.getpid()))
        while (HERE / "hold").exists():
            time.sleep(0.2)
    return data.current_inputs(business_date)
'''

POLICY = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text()) | {
    "pool_concurrency_limit": 2,
    "queues": [
        {"name": "critical", "priority": 1, "concurrency_limit": 2},
        {"name": "bulk", "priority": 10, "concurrency_limit": 1},  # one backfill at a time
    ],
    "windows": [],
    "backoff_seconds": [2, 3],
}


def _wait(pred, what, timeout=DEADLINE_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def stack(rg_home, tmp_path, monkeypatch):
    """`releasegate up` with one worker; yields the stack info and the barrier folder; `down` at the end."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from releasegate.tools.stack import down, free_port, up

    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "crash_barrier.py").write_text(BARRIER.format(folder=str(folder), held=HELD.isoformat()))
    policy = tmp_path / "capacity.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    govern(monkeypatch, tmp_path, MODEL, current_inputs={"entrypoint": "crash_barrier:current_inputs"})
    monkeypatch.setenv("RELEASEGATE_CAPACITY_POLICY", str(policy))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED", "false")
    monkeypatch.delenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", raising=False)  # the pool's setting applies
    home = rg_home
    ports = {
        "prefect_port": free_port(),
        "mlflow_port": free_port(),
        "webhook_port": free_port(),
        "console_port": free_port(),
    }
    try:
        info = up(home, ROOT, workers=1, **ports)
        monkeypatch.setenv("RELEASEGATE_MLFLOW_TRACKING_URI", info.mlflow)
        with temporary_settings(updates={PREFECT_API_URL: info.prefect_api}):
            yield info, folder, ports
            drain_prefect_services()
    finally:
        down(home)
        dispose_engines()


def _worker(info_home) -> dict:
    [w] = [
        p
        for p in json.loads((Path(info_home) / "stack.json").read_text())["processes"]
        if p["name"].startswith("worker-")
    ]
    return w


def test_a_killed_worker_s_backfill_is_marked_crashed_not_counted_retried_and_resumed(stack):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.client.schemas.objects import StateType
    from prefect.states import AwaitingRetry

    from releasegate import bootstrap
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_crashes import retry_crashed_runs
    from releasegate.tools.stack import alive, up

    info, folder, ports = stack
    # `up` started the governance console beside the rest, and told the workers (and stack.env) its URL
    assert httpx.get(f"{info.console}/healthz", timeout=30).json() == {"status": "ok"}
    assert f"RELEASEGATE_CONSOLE_URL={info.console}" in (Path(info.home) / "stack.env").read_text()
    prod_version(MODEL, 1, alias="champion")
    done = lambda: sorted(d for _, d in bootstrap.scheduling_store().completed([f"backfill:{MODEL}"], DAYS))  # noqa: E731
    with get_client(sync_client=True) as c:
        [zombie] = c.read_automations_by_name("releasegate-crash-zombie-flow-runs")  # applied by `infra up`
        assert zombie.enabled
        backfill_id = c.read_deployment_by_name("backfill/backfill").id
        (folder / "hold").write_text("")
        run = c.create_flow_run_from_deployment(
            backfill_id,
            parameters={"start_date": DAYS[0].isoformat(), "end_date": DAYS[-1].isoformat(), "model_name": MODEL},
        )
        state = lambda rid=run.id: c.read_flow_run(rid).state  # noqa: E731
        _wait(lambda: (folder / "reached").exists(), f"the backfill to reach {HELD}")
        assert done() == DAYS[:2] and state().type == StateType.RUNNING

        # alive and heartbeating: a run held longer than the zombie window is not taken for dead
        held_since = time.monotonic()
        _wait(lambda: time.monotonic() - held_since > ZOMBIE_WINDOW_S + 30, "the zombie window to pass", 300)
        assert state().type == StateType.RUNNING, state()

        # the machine dies: the worker and the flow-run process it started, SIGKILL
        worker = _worker(info.home)
        engine = int((folder / "reached").read_text())
        os.killpg(worker["pid"], signal.SIGKILL)
        if alive(engine):  # Prefect starts it in a process group of its own
            assert os.getpgid(engine) != os.getpgid(0)
            os.killpg(os.getpgid(engine), signal.SIGKILL)
        killed_at = datetime.now(UTC)
        _wait(lambda: not alive(worker["pid"]) and not alive(engine), "the killed processes to be gone", 60)
        assert state().type == StateType.RUNNING  # nothing knows yet

        # `releasegate up` on the running stack starts the dead worker again (it used to refuse)
        again = up(Path(info.home), ROOT, workers=1, **ports)
        restarted = _worker(again.home)
        assert restarted["pid"] != worker["pid"] and alive(restarted["pid"])

        # the next backfill while the dead run still looks Running: queue `bulk` takes one at a time
        nxt = c.create_flow_run_from_deployment(
            backfill_id,
            parameters={"start_date": "2026-11-23", "end_date": "2026-11-23", "model_name": MODEL},
        ).id

        crashed = _wait(lambda: state() if state().type == StateType.CRASHED else None, "the dead run to be Crashed")
        seconds = (crashed.timestamp - killed_at).total_seconds()
        print(f"marked Crashed {seconds:.0f} s after the kill (information)")
        assert "no heartbeat" in (crashed.message or ""), crashed.message
        with get_client(sync_client=True) as c2:  # the gateway reads Pending and Running runs only
            assert run.id not in {
                r.id for r in c2.read_flow_runs() if r.state_type in (StateType.RUNNING, StateType.PENDING)
            }

        # the gateway stops counting it: the next backfill is admitted and completes
        _wait(lambda: state(nxt).type == StateType.COMPLETED, "the next backfill to complete")
        late = [
            r
            for r in bootstrap.decision_log().query(kind="deferral", subject=f"flow_run:{nxt}")
            if r.decision_timestamp > crashed.timestamp + timedelta(seconds=5)
        ]
        assert not [r for r in late if str(run.id) in json.dumps(r.details)], [r.decision_rationale for r in late]

        # the sweeper's crash retry: its runtime policy (bulk: retries 1, 300 s) allows one
        [handled] = retry_crashed_runs(bootstrap.app(), load_gateway_config())
        assert (handled.flow_run_id, handled.action, handled.crashes) == (str(run.id), "retry", 1), handled
        waiting = state()
        assert waiting.name == "AwaitingRetry" and "retry 1 of 1" in waiting.message
        assert waiting.state_details.scheduled_time == crashed.timestamp + timedelta(seconds=300)
        [rec] = [r for r in bootstrap.decision_log().query(kind="schedule") if r.subject == f"flow_run:{run.id}"]
        assert rec.details["rule"] == "crash_retry" and rec.details["crash_action"] == "retry"
        assert retry_crashed_runs(bootstrap.app(), load_gateway_config()) == []  # once per crash

        # due now rather than in 300 s (the delay is the policy's; the test need not wait it out)
        (folder / "hold").unlink()
        assert c.set_flow_run_state(run.id, AwaitingRetry(scheduled_time=datetime.now(UTC))).status.value == "ACCEPT"
        final = _wait(
            lambda: state() if state().type in (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED) else None,
            "the retried backfill to end",
        )
        assert final.type == StateType.COMPLETED, final
        assert done() == DAYS
        [table] = c.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[f"backfill-{MODEL}"]), flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])
            )
        )
        rows = json.loads(table.data) if isinstance(table.data, str) else table.data
        status = {r["business_date"]: r["status"] for r in rows}
        assert (
            status
            == {
                **{d.isoformat(): "already_done" for d in DAYS[:2]},  # resumed at the first date not done
                **{d.isoformat(): "scored" for d in DAYS[2:]},
            }
        )
        assert c.read_flow_run(run.id).run_count == 2

        # `releasegate up --workers 2` on the running stack adds a second worker, leaves the first alone
        again = up(Path(info.home), ROOT, workers=2, **ports)
        workers = {
            p["name"]: p["pid"]
            for p in json.loads((Path(again.home) / "stack.json").read_text())["processes"]
            if p["name"].startswith("worker-")
        }
        assert workers["worker-releasegate-1"] == restarted["pid"] and alive(workers["worker-releasegate-2"])
        online = lambda: {w.name for w in c.read_workers_for_work_pool("releasegate") if w.status.value == "ONLINE"}  # noqa: E731
        _wait(lambda: {"releasegate-1", "releasegate-2"} <= online(), "both workers to poll the pool", 180)

"""The deferral-sweeper's crash retry (``adapters.prefect_crashes``) on the real Prefect harness.

Runs of a real deployment on a pool of this module's own (so no other test's crashed run is touched) are
put into the states a dead worker leaves (Running, then Crashed as the zombie automation sets it); the
sweep retries each crash as the run's runtime policy allows, once, records each verdict, and puts back a
run that was marked Crashed while it was only deferred. The end-to-end case, a real worker killed with
SIGKILL, is tests/e2e/test_crash_recovery.py.
"""

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from prefect import get_client
from prefect.client.schemas.objects import FlowRunPolicy, StateType
from prefect.states import Crashed, Running, Scheduled

from releasegate import bootstrap
from tests.conftest import ROOT

POOL = "rg-crash-test"


@pytest.fixture(scope="module")
def deployment(prefect_harness):
    from prefect.client.schemas.actions import WorkPoolCreate

    from flows.backfill import backfill

    with get_client(sync_client=True) as c:
        try:
            c.read_work_pool(POOL)
        except Exception:
            c.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
    return backfill.to_deployment(name="crash-test", work_pool_name=POOL).apply()


@pytest.fixture
def config(rg_home):
    from releasegate.policy.capacity import GatewayConfig

    doc = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text())
    return GatewayConfig.model_validate(doc | {"pool_name": POOL})


def _run(deployment, retries: int | None, delay: int = 5):
    with get_client(sync_client=True) as c:
        run = c.create_flow_run_from_deployment(
            deployment, parameters={"start_date": "2026-11-16", "end_date": "2026-11-16"}
        )
        if retries is not None:  # what the engine sets from the governed flow's runtime policy at its start
            c.update_flow_run(run.id, empirical_policy=FlowRunPolicy(retries=retries, retry_delay=delay))
    return run.id


def _force(run_id, *states):
    with get_client(sync_client=True) as c:
        for st in states:
            c.set_flow_run_state(run_id, st, force=True)
        return c.read_flow_run(run_id)


def _mine(handled, run_id):
    return [h for h in handled if h.flow_run_id == str(run_id)]


def test_a_crash_is_retried_once_per_crash_until_the_policys_retries_are_spent(deployment, config):
    from releasegate.adapters.prefect_crashes import LABEL, retry_crashed_runs

    run_id = _run(deployment, retries=1, delay=5)
    crashed = _force(run_id, Running(), Crashed(message="no heartbeat for 120 s")).state
    [first] = _mine(retry_crashed_runs(bootstrap.app(), config), run_id)
    assert (first.action, first.crashes) == ("retry", 1), first
    with get_client(sync_client=True) as c:
        run = c.read_flow_run(run_id)
    assert run.state.name == "AwaitingRetry" and run.state.type == StateType.SCHEDULED
    assert run.state.state_details.scheduled_time == crashed.timestamp + timedelta(seconds=5)
    assert run.labels[LABEL] == "1:retry"
    assert _mine(retry_crashed_runs(bootstrap.app(), config), run_id) == []  # handled: not twice

    _force(run_id, Running(), Crashed(message="no heartbeat for 120 s"))  # it crashed again
    [second] = _mine(retry_crashed_runs(bootstrap.app(), config), run_id)
    assert (second.action, second.crashes) == ("give_up", 2) and "allows 1 retry" in second.detail
    with get_client(sync_client=True) as c:
        assert c.read_flow_run(run_id).state_type == StateType.CRASHED
    assert _mine(retry_crashed_runs(bootstrap.app(), config), run_id) == []
    recs = [r for r in bootstrap.decision_log().query(kind="schedule") if r.subject == f"flow_run:{run_id}"]
    assert [(r.details["rule"], r.details["crash_action"], r.decision_outcome.value) for r in recs] == [
        ("crash_retry", "retry", "accept"),
        ("crash_retry", "give_up", "reject"),
    ]
    assert recs[0].details["crash_message"] == "no heartbeat for 120 s"


def test_a_run_without_retries_stays_crashed_and_says_so(deployment, config):
    from releasegate.adapters.prefect_crashes import retry_crashed_runs

    run_id = _run(deployment, retries=0)
    _force(run_id, Running(), Crashed())
    [h] = _mine(retry_crashed_runs(bootstrap.app(), config), run_id)
    assert h.action == "give_up" and "allows 0 retries" in h.detail


def test_a_deferred_run_marked_crashed_is_put_back_as_it_was_without_spending_a_retry(deployment, config):
    from releasegate.adapters.prefect_crashes import retry_crashed_runs

    run_id = _run(deployment, retries=1)
    due = datetime.now(UTC) + timedelta(hours=2)
    _force(
        run_id,
        Running(),
        Scheduled(scheduled_time=due, name="Deferred", message="CAPACITY_LIMIT"),
        Crashed(message="no heartbeat for 120 s"),  # a heartbeat sent as the run deferred itself
    )
    [h] = _mine(retry_crashed_runs(bootstrap.app(), config), run_id)
    assert h.action == "restored", h
    with get_client(sync_client=True) as c:
        state = c.read_flow_run(run_id).state
    assert state.name == "Deferred" and state.message == "CAPACITY_LIMIT"
    assert state.state_details.scheduled_time == due
    # a real crash later still has its retry
    _force(run_id, Running(), Crashed())
    [later] = _mine(retry_crashed_runs(bootstrap.app(), config), run_id)
    assert (later.action, later.crashes) == ("retry", 1), later

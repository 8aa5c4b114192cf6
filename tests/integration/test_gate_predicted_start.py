"""The gateway's own capacity deferrals carry a predicted start (issue 33, item 2), on the Prefect harness.

Flow runs are created from real deployments and executed by Prefect's engine (``run_flow``); the
backfills holding the pool are put in Running through the API as the engine would; only the clock is fake.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from prefect import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import Pause
from prefect.flow_engine import run_flow
from prefect.states import Running
from typer.testing import CliRunner

from releasegate import bootstrap
from releasegate.adapters.prefect_query import read_all_flow_runs
from releasegate.bootstrap import use_clock
from releasegate.cli import app
from releasegate.clock import FixedClock
from tests.conftest import ROOT, cancel_unfinished_pool_runs

pytestmark = pytest.mark.prefect

# seconds of backoff, so the fake clock and Prefect's real one agree on when a deferred run may go again
POLICY = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text()) | {
    "windows": [],
    "backoff_seconds": [1, 2],
    "pool_concurrency_limit": 2,
}


@pytest.fixture(scope="module")
def gated(prefect_harness):
    """infra up + the gated deployments, once for the module."""
    from flows.backfill import backfill
    from flows.eod_scoring import eod_scoring
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up

    infra_up(capacity_from_file(ROOT / "blocks" / "capacity_policy.yaml"))
    return {
        name: flow.to_deployment(name=name, work_pool_name="releasegate", work_queue_name=queue).apply()
        for flow, name, queue in ((eod_scoring, "eod-scoring", "critical"), (backfill, "backfill", "bulk"))
    }


@pytest.fixture
def two_slot_pool(tmp_path, monkeypatch, prefect_harness):
    path = tmp_path / "capacity.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(POLICY, default=str))))
    monkeypatch.setenv("RELEASEGATE_CAPACITY_POLICY", str(path))
    cancel_unfinished_pool_runs()  # other modules' runs must not hold our pool
    yield path
    cancel_unfinished_pool_runs()


@pytest.fixture
def fixed_clock():
    c = FixedClock(datetime.now(UTC).replace(microsecond=0))
    with use_clock(c):
        yield c


def _read(run_id):
    with get_client(sync_client=True) as c:
        return c.read_flow_run(run_id)


def _timeout(name: str) -> float:
    """The deployment's runtime-policy timeout: its expected duration while it has no completed run."""
    from releasegate.policy.runtime_policy import find_deployment, load_prefect_yaml, policy_from_deployment

    return float(
        policy_from_deployment(find_deployment(load_prefect_yaml(ROOT / "prefect.yaml"), name)).timeout_seconds
    )


def test_a_capacity_deferral_by_the_gateway_records_its_predicted_start(gated, rg_home, two_slot_pool, fixed_clock):
    """Two backfills hold both slots; two EOD runs come to the gateway a minute apart and are deferred
    for capacity. The second is predicted to start when a slot is free after the first took the one
    freed first: at the later backfill's expected end (rounded up to the minute)."""
    from flows.eod_scoring import eod_scoring
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_slots import HELD, mark
    from releasegate.policy.active_runs import ActiveRun
    from releasegate.policy.start_prediction import QueuedRun, predict_starts

    clock = fixed_clock
    with get_client(sync_client=True) as c:
        # no history: each run is expected to last its policy's timeout (the median of nothing)
        done = read_all_flow_runs(
            c,
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))
            ),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=list(gated.values()))),
        )
        for run in done:
            c.delete_flow_run(run.id)
        holders = [
            c.create_flow_run_from_deployment(
                gated["backfill"], parameters={"start_date": "2026-11-20", "end_date": "2026-11-20"}
            )
            for _ in range(2)
        ]
        for h in holders:
            c.set_flow_run_state(h.id, Running(), force=True)
            mark(str(h.id), HELD)
        eods = [
            c.create_flow_run_from_deployment(
                gated["eod-scoring"], parameters={"model_name": "credit", "business_date": d}
            )
            for d in ("2026-11-20", "2026-11-23")
        ]
    store = bootstrap.scheduling_store()
    for i, eod in enumerate(eods):
        if i:
            clock.advance(minutes=1)
        with pytest.raises(Pause):
            run_flow(eod_scoring, flow_run=_read(eod.id), return_type="state")
        assert store.get_deferral(str(eod.id)).reason_code == "CAPACITY_LIMIT"
    now = clock.now()
    first, second = (store.get_deferral(str(e.id)) for e in eods)
    assert second.predicted_start_at is not None and second.predicted_start_at >= now

    # the same schedule by hand: both EOD runs in line (the first since its deferral), the backfills
    # ending their timeout after they started, no reservation (nothing out-ranks the critical queue)
    eod_s, bf_s = _timeout("eod-scoring"), _timeout("backfill")
    ends = [_read(h.id).start_time + timedelta(seconds=bf_s) for h in holders]
    waiting = [
        QueuedRun(flow_run_id=str(eods[1].id), queue="critical", since=now, expected_seconds=eod_s),
        QueuedRun(flow_run_id=str(eods[0].id), queue="critical", since=first.first_deferred_at, expected_seconds=eod_s),
    ]
    active = [
        ActiveRun(flow_run_id=str(h.id), deployment="backfill", queue="bulk", state="running", expected_end=e)
        for h, e in zip(holders, ends, strict=True)
    ]
    expected = predict_starts(waiting, active, [], load_gateway_config(), now)[str(eods[1].id)]
    assert second.predicted_start_at == expected
    # and by arithmetic: the later backfill's end, on the minute grid from now (the first EOD run takes
    # the earlier one's slot and lasts longer than the gap between the two ends)
    assert eod_s > (max(ends) - min(ends)).total_seconds()
    minutes = -(-(max(ends) - now).total_seconds() // 60)
    assert expected == now + timedelta(minutes=minutes)
    assert first.predicted_start_at is not None and now - timedelta(minutes=1) <= first.predicted_start_at <= expected

    # the decision record carries it, ISO in UTC; the decision itself is unchanged
    recs = [r for r in bootstrap.decision_log().query(kind="deferral") if r.subject.endswith(str(eods[1].id))]
    assert len(recs) == 1
    assert recs[-1].details["predicted_start_at"] == expected.astimezone(UTC).isoformat()
    assert recs[-1].details["next_evaluation_at"] == second.next_evaluation_at.isoformat()

    res = CliRunner().invoke(app, ["deferrals", "--json"])
    assert res.exit_code == 0, res.output
    listed = {d["flow_run_id"]: d for d in json.loads(res.stdout)}
    assert datetime.fromisoformat(listed[str(eods[1].id)]["predicted_start_at"]) == expected

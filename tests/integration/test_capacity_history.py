"""`releasegate capacity plan` from a real Prefect server's run history: the governed deployments' runs
(an EOD made per model from a governed one is named as the policy names it), replayed through the
simulator, and the plan saved for `policy check` and `infra up`."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from prefect import flow, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists
from prefect.states import Completed, Running, Scheduled
from typer.testing import CliRunner

from releasegate.cli import app
from tests.conftest import ROOT

pytestmark = pytest.mark.prefect


@flow(name="plan-eod")
def plan_eod() -> None:
    """Only given states here."""


@flow(name="plan-batch")
def plan_batch() -> None:
    """Only given states here."""


@pytest.fixture
def history(prefect_harness, rg_home, tmp_path, monkeypatch):
    """Five days of history: an EOD per day from a per-model deployment (``plan-eod/m1``, tagged
    ``governed-by:eod-scoring-plan``) and four batch runs a day, each started and completed; one batch run never
    started (not history); and a run of a deployment the policy does not govern."""
    policy = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text())
    policy["deployments"] = {"eod-scoring-plan": {"queue": "critical"}, "plan-batch": {"queue": "bulk"}}
    path = tmp_path / "capacity.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("RELEASEGATE_CAPACITY_POLICY", str(path))
    with get_client(sync_client=True) as c:
        try:
            c.create_work_pool(WorkPoolCreate(name="plan-pool", type="process"))
        except ObjectAlreadyExists:
            pass
    eod = plan_eod.to_deployment(
        name="m1", tags=["governed-by:eod-scoring-plan"], work_pool_name="plan-pool", work_queue_name="critical"
    ).apply()
    batch = plan_batch.to_deployment(name="plan-batch", work_pool_name="plan-pool", work_queue_name="bulk").apply()
    other = plan_batch.to_deployment(name="plan-ungoverned", work_pool_name="plan-pool").apply()
    day0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=5)
    with get_client(sync_client=True) as c:

        def ran(dep, at):
            run = c.create_flow_run_from_deployment(dep, state=Scheduled(scheduled_time=at))
            c.set_flow_run_state(run.id, Running(), force=True)
            c.set_flow_run_state(run.id, Completed(), force=True)

        for d in range(5):
            day = day0 + timedelta(days=d)
            ran(eod, day + timedelta(hours=18))
            for h in (1, 2, 3, 4):
                ran(batch, day + timedelta(hours=h))
        c.create_flow_run_from_deployment(batch, state=Scheduled(scheduled_time=day0 + timedelta(hours=5)))
        ran(other, day0 + timedelta(hours=6))
    return path


def test_the_plan_replays_the_governed_history(history):
    res = CliRunner().invoke(app, ["capacity", "plan", "--weeks", "1", "--json"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert "Prefect run history, 1 week(s)" in plan["source"]
    assert "(25 runs)" in plan["source"]  # 5 EOD + 20 batch; not the unstarted one, not the ungoverned one
    assert plan["recommended_pool_cap"] >= 1 and plan["rows"]
    best = [r for r in plan["rows"] if r["pool"] == plan["recommended_pool_cap"]]
    assert best and best[0]["meets"] and best[0]["eod_on_time_share"] == 1.0
    check = CliRunner().invoke(app, ["policy", "check", str(ROOT / "prefect.yaml")])
    assert "below the last capacity plan's recommendation" not in " ".join(check.output.split())

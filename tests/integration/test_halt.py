"""The halt switch on the Prefect harness and a real MLflow registry: `releasegate halt` by on-call,
confirmed by Risk, pauses the model's schedules (and no other model's); the halted model's scheduled EOD
run and a promotion are refused and recorded; a champion moved in MLflow directly is put back with an
incident; a resume by the person who requested it is refused, a second person's resume turns the
schedules on again. Real Prefect, real MLflow; nothing faked."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from prefect import get_client
from prefect.flow_engine import run_flow
from prefect.schedules import Cron
from prefect.states import Scheduled
from typer.testing import CliRunner

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.cli import app
from releasegate.decisions import DecisionKind
from releasegate.services.alias_guard import HALTED_INCIDENT_KIND, guard_model
from tests.conftest import approve_prod_version, approver_keys, cancel_unfinished_pool_runs, govern, prod_version

pytestmark = pytest.mark.prefect
PROD = "prod.credit"
runner = CliRunner()


@pytest.fixture(scope="module")
def deployed(prefect_harness):
    from flows.eod_scoring import eod_scoring
    from flows.retrain import retrain
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up
    from tests.conftest import ROOT

    infra_up(capacity_from_file(ROOT / "blocks" / "capacity_policy.yaml"))
    eod = eod_scoring.to_deployment(
        name="halt-credit",
        work_pool_name="releasegate",
        work_queue_name="critical",
        parameters={"model_name": "credit"},
        tags=["eod", "model:credit"],
        schedules=[Cron("30 18 * * 1-5", timezone="Europe/Zurich")],
    ).apply()
    rt = retrain.to_deployment(
        name="halt-retrain",
        work_pool_name="releasegate",
        work_queue_name="bulk",
        schedules=[
            Cron("0 5 * * 1", timezone="Europe/Zurich", parameters={"model_name": "credit", "trigger": "periodic"}),
            Cron("0 6 * * 1", timezone="Europe/Zurich", parameters={"model_name": "other", "trigger": "periodic"}),
        ],
    ).apply()
    return {"eod": eod, "retrain": rt}


@pytest.fixture
def home(rg_home, tmp_path, monkeypatch, deployed):
    monkeypatch.setenv("COLUMNS", "250")
    approver_keys(tmp_path / "approvers-oncall", monkeypatch, extra={"oncall": ["ops-olga", "ops-otto"]})
    govern(monkeypatch, tmp_path, "credit", "other")
    v1 = prod_version("credit", 1, alias="champion")
    approve_prod_version("credit", v1)
    v2 = prod_version("credit", 2)
    approve_prod_version("credit", v2, previous_champion=v1)
    registry.set_alias(PROD, registry.ARCHIVE, v1)
    registry.set_alias(PROD, registry.CHAMPION, v2)
    prod_version("credit", 3)
    cancel_unfinished_pool_runs()
    yield rg_home
    cancel_unfinished_pool_runs()
    _cli("resume", "credit", "--by", "ops-otto")  # leave the module's schedules as they were
    _cli("resume", "credit", "--by", "risk-dan")


def _cli(*args: str):
    return runner.invoke(app, [*args, "--reason", "scores drift on the EOD book", "--ticket", "INC-9"])


def _active(deployment_id) -> dict[str, bool]:
    with get_client(sync_client=True) as c:
        dep = c.read_deployment(deployment_id)
    own = dep.parameters.get("model_name")
    return {str((s.parameters or {}).get("model_name") or own): s.active for s in dep.schedules}


def _refusals(subject: str) -> list:
    return bootstrap.decision_log().query(kind=DecisionKind.refusal, subject=subject)


def test_halt_confirmed_by_a_second_person_stops_every_path_until_a_second_person_resumes(home, deployed):
    from flows.eod_scoring import eod_scoring
    from flows.promotion import promotion

    asked = _cli("halt", "credit", "--by", "ops-olga")
    assert asked.exit_code == 0, asked.output
    assert "halt REQUESTED" in asked.output and "a second person on the risk list" in asked.output
    assert _active(deployed["eod"]) == {"credit": True}  # a request alone changes nothing

    own = _cli("halt", "credit", "--by", "ops-olga")  # the requester cannot confirm
    assert own.exit_code == 2 and "a second person confirms" in own.output
    assert _refusals("model:credit")[-1].details["field"] == "by"

    confirmed = _cli("halt", "credit", "--by", "risk-carla")
    assert confirmed.exit_code == 0, confirmed.output
    assert "halt CONFIRMED" in confirmed.output and "champion pinned at v2" in confirmed.output
    assert _active(deployed["eod"]) == {"credit": False}
    assert _active(deployed["retrain"]) == {"credit": False, "other": True}  # another model keeps its schedule

    # the halted model's scheduled EOD run does not start: refused and recorded
    at = datetime.now(UTC) - timedelta(seconds=5)
    with get_client(sync_client=True) as c:
        run = c.create_flow_run_from_deployment(deployed["eod"], state=Scheduled(scheduled_time=at))
        state = run_flow(eod_scoring, flow_run=c.read_flow_run(run.id), return_type="state")
    assert state.is_cancelled() and state.name == "Halted" and "halted" in (state.message or "")
    [refusal] = _refusals(f"flow_run:{run.id}")
    assert refusal.details["model_name"] == "credit" and bootstrap.decision_log().is_trusted(refusal)

    # a promotion of the halted model is refused before anything runs
    promo = promotion(model_name="credit", candidate_version="3", return_state=True)
    assert promo.is_cancelled() and promo.name == "Halted"
    assert any(r.details.get("refused") == "run of promotion" for r in bootstrap.decision_log().query(kind="refusal"))
    assert registry.alias_version(PROD, registry.CHAMPION) == "2"

    # someone moves the champion in MLflow directly: an incident, and the pinned champion is back
    registry.set_alias(PROD, registry.CHAMPION, "3")
    result = guard_model("credit", bootstrap.ports(), restore=False)
    assert result.status == "restored" and registry.alias_version(PROD, registry.CHAMPION) == "2"
    incidents = bootstrap.decision_log().query(kind=DecisionKind.incident, subject="model:credit")
    assert incidents[-1].details["incident_kind"] == HALTED_INCIDENT_KIND

    listed = runner.invoke(app, ["halts", "--json"])
    [row] = json.loads(listed.output)
    assert row["model"] == "credit" and row["status"] == "halted" and row["pinned_champion"] == "2"

    assert _cli("resume", "credit", "--by", "ops-olga").exit_code == 0
    again = _cli("resume", "credit", "--by", "ops-olga")
    assert again.exit_code == 2 and "a second person confirms" in again.output
    assert _active(deployed["eod"]) == {"credit": False}  # still halted
    lifted = _cli("resume", "credit", "--by", "risk-dan")
    assert lifted.exit_code == 0 and "resume CONFIRMED" in lifted.output, lifted.output
    assert _active(deployed["eod"]) == {"credit": True}
    assert _active(deployed["retrain"]) == {"credit": True, "other": True}

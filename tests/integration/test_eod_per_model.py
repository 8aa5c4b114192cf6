"""EOD per model on the Prefect harness: `releasegate deploy` makes eod-scoring/<model> from the manifest's
``eod:`` entries; runs the schedules make score their own model (two models due the same minute both
run); one model's slot never holds another's run; a problem no retry fixes fails the run at once while a
late file is still retried. Real Prefect, a real MLflow registry; only the clock is fake."""

from datetime import UTC, date, datetime

import pytest
from prefect import get_client
from prefect.exceptions import ObjectNotFound
from prefect.flow_engine import run_flow
from prefect.states import Scheduled
from typer.testing import CliRunner

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.bootstrap import use_clock
from releasegate.cli import app
from releasegate.clock import FixedClock
from tests.conftest import (
    apply_deployments,
    approve_prod_version,
    cancel_unfinished_pool_runs,
    fast_capacity_policy,
    govern,
    prod_version,
)

pytestmark = pytest.mark.prefect
DAY = date(2026, 11, 23)  # a Monday
DUE = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)  # 18:30 Europe/Zurich
DUE_NY = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)  # 18:30 America/New_York, already the 24th in Zurich


@pytest.fixture(scope="module")
def deployed(prefect_harness):
    from flows.rollback import rollback

    return apply_deployments({"rollback": (rollback, "critical")})


@pytest.fixture
def home(rg_home, tmp_path, monkeypatch, deployed):
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))  # for `prefect deploy`'s process
    monkeypatch.setenv("COLUMNS", "250")
    cancel_unfinished_pool_runs()
    fast_capacity_policy(tmp_path, monkeypatch)
    yield rg_home
    cancel_unfinished_pool_runs()


def champion(model: str, seed: int) -> str:
    v = prod_version(model, seed, alias="champion")
    approve_prod_version(model, v)
    return v


def scheduled_run(deployment_id, at: datetime):
    """A run as Prefect's scheduler makes one: Scheduled at the cron time, key ``scheduled <deployment> ...``."""
    with get_client(sync_client=True) as c:
        return c.create_flow_run_from_deployment(
            deployment_id,
            state=Scheduled(scheduled_time=at),
            idempotency_key=f"scheduled {deployment_id} {at.isoformat()}",
        )


def execute(flow, run_id):
    with get_client(sync_client=True) as c:
        return run_flow(flow, flow_run=c.read_flow_run(run_id), return_type="state")


def test_deploy_makes_one_scheduled_eod_deployment_per_model_and_each_scores_its_own_model(home, tmp_path, monkeypatch):
    import yaml

    from flows.eod_scoring import eod_scoring

    manifest = govern(monkeypatch, tmp_path, "eodteama", "eodteamb", "eodteamny", "eodnosched")
    doc = yaml.safe_load(manifest.read_text())
    for entry in doc["models"]:  # the first two due at 18:30 Zurich on weekdays (the shipped credit's eod)
        if entry["name"] == "eodnosched":
            del entry["eod"]
        if entry["name"] == "eodteamny":
            entry["eod"] = {"cron": "30 18 * * 1-5", "timezone": "America/New_York"}
    manifest.write_text(yaml.safe_dump(doc))

    res = CliRunner().invoke(app, ["deploy", "--name", "eod-scoring"])
    assert res.exit_code == 0, res.output
    assert "model EOD deployment eod-scoring/eodteama: 30 18 * * 1-5 Europe/Zurich" in res.output
    ids = {}
    with get_client(sync_client=True) as c:
        generic = c.read_deployment_by_name("eod-scoring/eod-scoring")
        assert generic.schedules == []  # no longer scheduled for one model
        for name, tz in (
            ("eodteama", "Europe/Zurich"),
            ("eodteamb", "Europe/Zurich"),
            ("eodteamny", "America/New_York"),
        ):
            dep = c.read_deployment_by_name(f"eod-scoring/{name}")
            ids[name] = dep.id
            assert dep.parameters["model_name"] == name and dep.work_queue_name == "critical"
            [sched] = dep.schedules
            assert (sched.schedule.cron, sched.schedule.timezone, sched.active) == ("30 18 * * 1-5", tz, True)
        with pytest.raises(ObjectNotFound):
            c.read_deployment_by_name("eod-scoring/eodnosched")

    versions = {name: champion(name, seed) for name, seed in (("eodteama", 1), ("eodteamb", 2), ("eodteamny", 5))}
    runs = {name: scheduled_run(ids[name], DUE) for name in ("eodteama", "eodteamb")}
    with use_clock(FixedClock(DUE)):
        states = {name: execute(eod_scoring, run.id) for name, run in runs.items()}
    ny = scheduled_run(ids["eodteamny"], DUE_NY)
    with use_clock(FixedClock(DUE_NY)):
        states["eodteamny"] = execute(eod_scoring, ny.id)
    for name, state in states.items():  # same minute, two models: two occurrences, not one duplicate
        assert state.is_completed(), state.message
        out = state.result()
        assert out["model_name"] == name and out["champion_version"] == versions[name]
        assert out["business_date"] == DAY.isoformat()  # the date where the model's own schedule runs
    # the business date comes from the schedule; its occurrence is claimed per model deployment
    assert {r.subject for r in bootstrap.decision_log().query(kind="monitoring")} == {
        "model:eodteama",
        "model:eodteamb",
        "model:eodteamny",
    }
    assert bootstrap.decision_log().query(kind="schedule") == []  # no DUPLICATE_OCCURRENCE skip
    from releasegate.policy.schedule_rules import occurrence_of

    occurrence = occurrence_of("30 18 * * 1-5", "Europe/Zurich", DUE)
    assert occurrence is not None
    for name in ("eodteama", "eodteamb"):  # each claimed under its own deployment's schedule
        claim = bootstrap.scheduling_store().lookup(f"eod-scoring/{name}", occurrence.key)
        assert claim is not None and claim.flow_run_id == str(runs[name].id)


def test_one_models_held_slot_does_not_hold_another_models_eod(home, tmp_path, monkeypatch):
    from prefect.concurrency.sync import concurrency

    from flows.eod_scoring import eod_scoring

    govern(monkeypatch, tmp_path, "eodslota", "eodslotb")
    champion("eodslotb", 3)
    run = eod_scoring.with_options(retries=0)
    run(business_date=DAY, model_name="eodslota", rows=50, return_state=True)  # creates eodslota's limit
    with concurrency("deployment-eod-scoring-eodslota", occupy=1, strict=True):  # eodslota's EOD is running
        state = run(business_date=DAY, model_name="eodslotb", rows=500, return_state=True)
    assert state.is_completed(), state.message
    with get_client(sync_client=True) as c:
        for model in ("eodslota", "eodslotb"):
            assert c.read_global_concurrency_limit_by_name(f"deployment-eod-scoring-{model}").limit == 1


def _write_inputs(folder, day: date, drop: str | None = None) -> None:
    from credit_example.data import current_inputs, labels

    frame = current_inputs(day).assign(label=labels(day)["label"])
    frame.drop(columns=[drop] if drop else []).to_csv(folder / f"{day.isoformat()}.csv", index=False)


def test_a_missing_column_fails_at_once_and_a_late_file_is_retried(home, tmp_path, monkeypatch):
    from flows.eod_scoring import eod_scoring

    data = tmp_path / "inputs"
    data.mkdir()
    govern(
        monkeypatch,
        tmp_path,
        "eodcsv",
        current_inputs={"uri": str(data / "{business_date}.csv")},
        labels=None,
    )
    champion("eodcsv", 4)

    _write_inputs(data, DAY, drop="volatility")
    state = eod_scoring(business_date=DAY, model_name="eodcsv", rows=500, return_state=True)  # shipped retries
    assert state.is_failed(), state
    assert "models[eodcsv].current_inputs" in state.message and "missing column(s) volatility" in state.message
    with get_client(sync_client=True) as c:
        assert c.read_flow_run(state.state_details.flow_run_id).run_count == 1  # not retried: 2 x 120 s saved

    late = date(2026, 11, 24)
    attempts = []

    def file_arrives_before_the_retry(flow, flow_run, state):
        attempts.append(state.name)
        if len(attempts) == 2:
            _write_inputs(data, late)

    retried = eod_scoring.with_options(retries=1, retry_delay_seconds=0, on_running=[file_arrives_before_the_retry])
    state = retried(business_date=late, model_name="eodcsv", rows=500, return_state=True)
    assert state.is_completed(), state.message
    assert len(attempts) == 2  # the first attempt found no file for the date; the retry scored it
    assert state.result()["champion_version"] == registry.aliases("prod.eodcsv")["champion"]

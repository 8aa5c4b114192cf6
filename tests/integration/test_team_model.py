"""A team's own regression model under EOD monitoring, rollback and backfill, with no edit to releasegate.

scikit-learn's bundled diabetes data; KPI ``rmse`` (lower is better); the team's daily inputs are
Parquet files per business date and its labels come from its own Python entry point (a module in the
team's folder). Real Prefect (harness), real MLflow registry, real SQLite; only the clock is fixed where
the decision log's dates matter. The backfill is run in a separate process and killed with SIGKILL
while it waits on a date's data, then resumed.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from prefect.client.schemas.objects import StateType
from prefect.exceptions import Pause

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from tests.conftest import (
    ROOT,
    InProcessWorker,
)
from tests.support import diabetes_team
from tests.support.diabetes_team import DAYS, DRIFTED, MODEL, PROD, QUIET, two_approved_versions

deployed, team = diabetes_team.deployed, diabetes_team.team  # the fixtures, shared with the calendar tests


def test_a_team_project_from_a_registry_event_to_its_own_retrain_and_promotion_by_its_lower_is_better_kpi(
    team, monkeypatch
):
    """The team's folder holds its own flow (``team_flows.team_retrain``, governed by its own prefect.yaml):
    a new dev version reaches the retrain gateway, which calls the team's deployment as a child run; the
    retrained candidate (rmse 53.1) beats the champion (56.5) by more than 2 % and is promoted; a worse
    one (69.8) is refused and nothing moves."""
    from prefect import get_client
    from prefect.flow_engine import run_flow

    from flows.promotion import promotion
    from flows.retrain import retrain
    from releasegate.adapters.registry_watch import watch_once
    from releasegate.testing.approval_driver import DemoApprover, demo_approvers_file

    _, _, folder = team
    import shutil

    import team_flows

    from releasegate.policy.calendar import WEEKDAYS_ONLY

    # the drift gate reads the newest business date's inputs (the model's calendar: weekdays)
    today = WEEKDAYS_ONLY.on_or_before(bootstrap.clock().now().date()).isoformat()
    for part in ("inputs", "labels"):
        shutil.copy(folder / part / f"{QUIET}.parquet", folder / part / f"{today}.parquet")

    monkeypatch.setenv("RELEASEGATE_APPROVERS", str(demo_approvers_file(folder)))
    team_flows.team_retrain.to_deployment(
        name="team-retrain", work_pool_name="releasegate", work_queue_name="bulk"
    ).apply()

    def promote(version):
        with DemoApprover(MODEL, version):
            return promotion(model_name=MODEL, candidate_version=version, requested_by="team-ml-engineer")

    v1, _ = team_flows.fit_and_log(1.0)
    first = promote(v1)
    assert first["outcome"] == "promote", first
    assert registry.alias_version(PROD, "champion") == first["prod_version"]

    team_flows.fit_and_log(0.01, env="dev")  # the registry event: a new dev version
    [created] = [x for x in watch_once(bootstrap.app()) if x.status == "created" and x.deployment == "retrain"]
    with InProcessWorker({"team-retrain": team_flows.team_retrain}) as worker, get_client(sync_client=True) as c:
        state = run_flow(retrain, flow_run=c.read_flow_run(created.flow_run_id), return_type="state")
        assert state.is_completed(), state.message
        out = state.result()
        child = c.read_flow_run(out["retrain_job_run_id"])
    assert out["outcome"] == "retrain" and out["retrain_deployment"] == "team-retrain/team-retrain"
    assert worker.ran and child.parent_task_run_id is not None and child.state_type == StateType.COMPLETED
    assert child.parameters == {"reason": out["reason_code"]}
    retrained = str(max(int(v.version) for v in registry.client().search_model_versions(f"name='staging.{MODEL}'")))

    better = promote(retrained)
    assert better["outcome"] == "promote", better
    champion = registry.alias_version(PROD, "champion")
    assert champion == better["prod_version"] and registry.alias_version(PROD, "archive") == first["prod_version"]

    worse, rmse = team_flows.fit_and_log(10.0)
    refused = promote(worse)
    assert refused["outcome"] in ("hold", "reject") and rmse > 60
    assert any("kpi" in m.lower() for m in refused["measures_plan"]), refused
    assert registry.alias_version(PROD, "champion") == champion  # nothing moved


def test_eod_scores_the_teams_parquet_day_with_its_own_kpi_and_a_drifted_day_rolls_back(team):
    from flows.eod_scoring import eod_scoring
    from flows.rollback import rollback

    X, y, _ = team
    v1, v2 = two_approved_versions(X, y)
    quiet = eod_scoring(business_date=QUIET, model_name=MODEL)
    assert quiet["rows"] == 300 and quiet["failures"] == 0 and quiet["kpi"] == "rmse"
    assert quiet["label_source"] == "labels" and 30 < quiet["champion_metric"] < 80  # rmse of the target
    assert quiet["action"] == "monitor" and quiet["reason_code"] == "WITHIN_LIMITS", quiet
    assert quiet["max_psi"] < 0.2

    drifted = eod_scoring(business_date=DRIFTED, model_name=MODEL)
    assert drifted["max_psi"] > 0.3 and drifted["reason_code"] == "DRIFT_URGENT" and drifted["action"] == "rollback"
    with InProcessWorker({"rollback": rollback}):
        from tests.support.prefect_runs import run_by_key, wait_final

        [rb] = run_by_key(f"rollback:monitoring:{MODEL}:{DRIFTED}:rollback:full")
        assert rb.parameters["business_date"] == DRIFTED.isoformat()
        fr = wait_final(rb.id)
    assert fr.state_type == StateType.COMPLETED, fr.state.message
    assert registry.alias_version(PROD, "champion") == v1
    rec = [r for r in bootstrap.decision_log().query(kind="rollback") if r.details["status"] == "final"][-1]
    on_day = rec.details["verification"]["business_date"]
    # the restored version, scored on the drifted day's own Parquet rows and measured on its labels
    assert rec.details["verified"] is True and on_day["rows"] == 300 and on_day["failures"] == 0
    assert on_day["kpi"] == "rmse" and on_day["value"] > 0


def _completed(days):
    return sorted(d for _, d in bootstrap.scheduling_store().completed([f"backfill:{MODEL}"], days))


def test_backfill_rescored_each_date_once_with_its_champion_killed_after_two_and_resumed(team):
    from prefect.settings import PREFECT_API_URL

    from flows.backfill import backfill

    X, y, folder = team
    v1, v2 = two_approved_versions(X, y)
    (folder / "HANG").write_text(DAYS[2].isoformat())  # the third date's labels do not arrive
    code = (
        "from datetime import date; from flows.backfill import backfill; "
        f"backfill(start_date=date.fromisoformat('{DAYS[0]}'), end_date=date.fromisoformat('{DAYS[-1]}'), "
        f"model_name='{MODEL}')"
    )
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(folder)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while _completed(DAYS) != DAYS[:2]:
            assert proc.poll() is None, f"the backfill process ended early (rc {proc.returncode})"
            assert time.monotonic() < deadline, f"two dates not done in 300 s: {_completed(DAYS)}"
            time.sleep(0.5)
        time.sleep(1.0)  # it is now waiting on the third date's labels
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert _completed(DAYS) == DAYS[:2]  # killed: two dates done, nothing else

    (folder / "HANG").unlink()
    # the killed process's leased bulk slot stays taken (the harness runs no lease repossessor): the
    # resumed run takes the queue's other one
    try:
        out = backfill(start_date=DAYS[0], end_date=DAYS[-1], model_name=MODEL)
    except Pause:  # deferred by the capacity gateway: say why
        [why] = bootstrap.decision_log().query(kind="deferral", newest_first=True, limit=1)
        pytest.fail(f"the resumed backfill was deferred: {why.decision_rationale} {why.details}")
    status = {r["business_date"]: r["status"] for r in out["rows"]}
    assert status == {
        **{d.isoformat(): "already_done" for d in DAYS[:2]},
        **{d.isoformat(): "scored" for d in DAYS[2:]},
    }
    assert _completed(DAYS) == DAYS
    # each date with the version that was champion on it per the decision log (none before the 17th)
    version = {r["business_date"]: (r["version"], r["version_source"]) for r in out["rows"] if r["version"]}
    assert version[DAYS[2].isoformat()] == (v1, "decision log: champion on that date")
    assert version[DAYS[3].isoformat()][0] == version[DAYS[4].isoformat()][0] == v2
    for r in out["rows"][2:]:
        assert r["rows"] == 300 and r["failures"] == 0 and r["kpi"] == "rmse" and r["value"] > 0

    again = backfill(start_date=DAYS[0], end_date=DAYS[-1], model_name=MODEL)
    assert again["already_done"] == 5 and again["scored"] == 0  # none twice


@pytest.mark.parametrize(
    ("break_data", "rule"),
    [
        (lambda f: (f / "inputs" / f"{QUIET}.parquet").unlink(), f"no file for business date {QUIET}"),
        (
            lambda f: (
                __import__("pandas")
                .read_parquet(f / "inputs" / f"{QUIET}.parquet")
                .drop(columns=["bmi"])
                .to_parquet(f / "inputs" / f"{QUIET}.parquet")
            ),
            "missing column(s) bmi that the model's signature",
        ),
    ],
    ids=["missing-file", "missing-signature-column"],
)
def test_bad_data_for_a_date_fails_eod_naming_model_field_and_rule_and_changes_nothing(team, break_data, rule):
    from flows.eod_scoring import eod_scoring

    X, y, folder = team
    v1, v2 = two_approved_versions(X, y)
    break_data(folder)
    state = eod_scoring.with_options(retries=0)(business_date=QUIET, model_name=MODEL, return_state=True)
    assert state.is_failed()
    assert f"models[{MODEL}].current_inputs" in state.message and rule in state.message, state.message
    assert bootstrap.decision_log().query(kind="monitoring") == []  # no verdict, nothing requested
    assert registry.aliases(PROD) == {"champion": v2, "archive": v1}
    assert bootstrap.scheduling_store().completed(["eod-scoring"], [QUIET]) == set()

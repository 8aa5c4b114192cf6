"""EOD scoring → monitoring → decision tree → rollback / retrain, on the Prefect harness and a real registry.

The EOD flow runs with Prefect's engine; the rollback run it requests is created through event intake
and executed by ``InProcessWorker`` (Prefect's ``run_flow``, what a worker runs). Only the clock is fake.
"""

from datetime import date

import numpy as np
import pytest
from prefect import get_client
from prefect.client.schemas.objects import StateType

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.policy.rollback_tree import Action, Stage, TreeThresholds
from releasegate.policy.scoring import Assessment, canary_mask, challenger_stage, compare, judge
from tests.conftest import (
    ROOT,
    InProcessWorker,
    apply_deployments,
    approve_prod_version,
    cancel_unfinished_pool_runs,
    fast_capacity_policy,
    govern,
    prod_version,
)
from tests.support.prefect_runs import run_by_key, wait_final

DAY = date(2026, 11, 23)
WEAKER = ("exposure_musd", "collateral_ratio")  # a challenger without two data sources: ~7 % lower AUC


# ------------------------------------------------------------------------------------------ pure
def test_canary_mask_is_deterministic_and_close_to_the_share():
    a, b = canary_mask(10_000, 0.2, "prod.m:2026-11-23"), canary_mask(10_000, 0.2, "prod.m:2026-11-23")
    assert (a == b).all() and 0.18 < a.mean() < 0.22
    assert not (a == canary_mask(10_000, 0.2, "prod.m:2026-11-24")).all()
    assert canary_mask(100, 0.0, "x").sum() == 0 and canary_mask(100, 1.0, "x").all()
    with pytest.raises(ValueError, match="canary_share"):
        canary_mask(10, 1.5, "x")


def test_stage_and_comparison():
    assert challenger_stage(False, 0.3) is None
    assert challenger_stage(True, 0.0) is Stage.shadow and challenger_stage(True, 0.1) is Stage.canary
    c = compare(np.array([0.1, 0.6, 0.9, np.nan]), np.array([0.2, 0.4, 0.95, 0.5]), 0.80, 0.744)
    assert c.agreement == pytest.approx(2 / 3, abs=1e-6) and c.mean_abs_diff == pytest.approx(0.35 / 3, abs=1e-6)
    assert c.relative_drop == pytest.approx(0.07)


def _a(version="2", stage=Stage.full, psi=0.05, drop=0.01, impact=False):
    return Assessment(version=version, stage=stage, max_psi=psi, metric_drop=drop, business_impact=impact)


@pytest.mark.parametrize(
    ("champion", "challenger", "method", "retrain", "code"),
    [
        (_a(psi=0.7), None, "full", True, "DRIFT_URGENT"),
        (_a(psi=0.7), _a("3", Stage.canary, psi=0.7), "full", True, "DRIFT_URGENT"),
        (_a(impact=True), None, "full", False, "BUSINESS_IMPACT"),
        (_a(drop=0.07), None, "full", False, "KPI_DROP_FULL"),
        (_a(), _a("3", Stage.canary, drop=0.07), "canary", False, "KPI_DROP_CANARY"),
        (_a(), _a("3", Stage.shadow, drop=0.12), "canary", False, "KPI_DROP_SEVERE"),
        (_a(), _a("3", Stage.canary, impact=True), "canary", False, "BUSINESS_IMPACT"),
        (_a(psi=0.25), None, None, True, "DRIFT_PLAN"),
        (_a(), _a("3", Stage.canary, psi=0.25), None, True, "DRIFT_PLAN"),
        (_a(), _a("3", Stage.canary, drop=0.02), None, False, "WITHIN_LIMITS"),
    ],
)
def test_verdict_table(champion, challenger, method, retrain, code):
    v = judge(champion, challenger, TreeThresholds())
    assert (v.rollback_method, v.retrain, v.reason_code) == (method, retrain, code)


def test_a_seven_percent_drop_in_canary_never_touches_the_champion():
    v = judge(_a(), _a("3", Stage.canary, drop=0.07), TreeThresholds())
    assert v.action == "drop_challenger" and v.champion.action is Action.monitor


# ---------------------------------------------------------------------------- flows, real parts
@pytest.fixture(scope="module")
def deployed(prefect_harness):
    from flows.eod_scoring import eod_scoring
    from flows.retrain import retrain
    from flows.rollback import rollback

    return apply_deployments(
        {"eod-scoring": (eod_scoring, "critical"), "rollback": (rollback, "critical"), "retrain": (retrain, "bulk")}
    )


@pytest.fixture
def home(rg_home, tmp_path, monkeypatch, deployed, live_clock):
    cancel_unfinished_pool_runs()
    fast_capacity_policy(tmp_path, monkeypatch)
    govern(monkeypatch, tmp_path, "eoddrift", "eodcanary", "eodquiet", "nochamp", "eodretry")
    yield rg_home
    cancel_unfinished_pool_runs()


def test_injected_drift_rolls_back_to_the_archive_and_requests_an_urgent_retrain(home, monkeypatch):
    from flows.eod_scoring import eod_scoring
    from flows.rollback import rollback

    model, prod = "eoddrift", "prod.eoddrift"
    v1, v2 = prod_version(model, 1), prod_version(model, 2)
    for v in (v1, v2):
        approve_prod_version(model, v)
    registry.set_alias(prod, "archive", v1)
    registry.set_alias(prod, "champion", v2)
    monkeypatch.setenv("RELEASEGATE_MARKET_DRIFT", "0.35")  # the market regime shifts

    state = eod_scoring(business_date=DAY, model_name=model, rows=4000, return_state=True)
    assert state.is_completed(), state.message
    out = state.result()
    assert out["max_psi"] > 0.3 and out["action"] == "rollback" and out["reason_code"] == "DRIFT_URGENT"
    assert out["rows"] == 4000 and out["failures"] == 0
    assert set(out["latency_ms"]) == {"p50", "p95", "p99"} and 0 < out["latency_ms"]["p50"] <= out["latency_ms"]["p99"]
    lines = open(out["predictions_path"]).read().splitlines()
    assert lines[0] == "row,served_by_challenger,served,champion,challenger,label" and len(lines) == 4001
    [mon] = bootstrap.decision_log().query(kind="monitoring")
    assert mon.details["action"] == "rollback" and mon.details["champion"]["max_psi"] > 0.3
    assert mon.decision_id == out["decision_id"]
    # judged with its sample size: beyond the noise of 4,000 rows, and the reason says what it was held against
    assert mon.details["champion"]["psi_beyond_noise"] > 0.3
    assert "critical value" in out["reason"] and "n=4000 rows" in out["reason"] and "false-alarm rate" in out["reason"]

    # One rollback run and one retrain run, through intake (Prefect event + idempotency key).
    [rb] = run_by_key(f"rollback:monitoring:{model}:{DAY}:rollback:full")
    assert rb.parameters["method"] == "full" and rb.parameters["trigger"] == "DRIFT_URGENT"
    assert rb.parameters["expected_version"] == v2
    assert str(rb.id) == out["rollback"]["flow_run_id"] and out["rollback"]["status"] == "created"
    [rt] = run_by_key(f"retrain:monitoring:{model}:{DAY}:retrain")
    assert rt.parameters == {"model_name": model, "trigger": "drift"}
    events = [
        r
        for r in bootstrap.decision_log().query(kind="event")
        if r.details["event_id"].startswith(mon.decision_id) and r.details.get("status") == "accepted"
    ]
    assert sorted(r.details["event_type"] for r in events) == [
        "monitoring.retrain.requested@v1",
        "monitoring.rollback.requested@v1",
    ]

    # A retried EOD for the same date gives the same verdict and starts nothing new.
    again = eod_scoring(business_date=DAY, model_name=model, rows=4000)
    assert again["rollback"]["status"] == "duplicate" and again["rollback"]["flow_run_id"] == str(rb.id)
    assert again["retrain"]["status"] == "duplicate"

    # The rollback run, executed as a worker would: champion back on the archived, approved version.
    with InProcessWorker({"rollback": rollback}):
        fr = wait_final(rb.id)
    assert fr.state_type == StateType.COMPLETED, fr.state.message
    assert registry.alias_version(prod, "champion") == v1 and registry.alias_version(prod, "archive") is None
    [pending, rec] = bootstrap.decision_log().query(kind="rollback")  # the plan before any alias moved, the result
    assert pending.details["status"] == "pending" and rec.details["pending_decision_id"] == pending.decision_id
    assert rec.details["previous_version"] == v2 and rec.details["new_version"] == v1
    assert rec.details["trigger"] == "DRIFT_URGENT" and rec.details["verified"] is True
    assert rec.actor == "releasegate:monitoring" and "PSI" in rec.details["root_cause"]
    # verified on the day's own inputs too, not only on the logged input_example
    on_day = rec.details["verification"]["business_date"]
    assert on_day["ok"] and on_day["business_date"] == DAY.isoformat() and on_day["failures"] == 0
    assert on_day["rows"] == 5000 and on_day["kpi"] == "roc_auc" and 0.5 < on_day["value"] <= 1


def test_a_retried_eod_records_its_verdict_once_when_the_rollback_was_not_deployed_at_first(
    home, tmp_path, monkeypatch
):
    """The first attempt records the verdict, then cannot request the rollback: its deployment is not
    deployed. Prefect retries the same flow run; meanwhile the rollback is deployed. The retry sends the
    requests under the first attempt's decision instead of writing a second one for the model and date."""
    import yaml

    from flows.eod_scoring import eod_scoring
    from flows.rollback import rollback

    model, prod, late = "eodretry", "prod.eodretry", "rollback-late"
    v1, v2 = prod_version(model, 1), prod_version(model, 2)
    for v in (v1, v2):
        approve_prod_version(model, v)
    registry.set_alias(prod, "archive", v1)
    registry.set_alias(prod, "champion", v2)
    monkeypatch.setenv("RELEASEGATE_MARKET_DRIFT", "0.35")
    routes = yaml.safe_load((ROOT / "blocks" / "event_routes.yaml").read_text())
    for r in routes["routes"]:
        if r["event_type"] == "monitoring.rollback.requested@v1":
            r["deployment"] = late
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(routes))
    monkeypatch.setenv("RELEASEGATE_EVENT_ROUTES", str(path))
    attempts = []

    def deploy_before_the_retry(flow, flow_run, state):
        attempts.append(state.name)
        if len(attempts) == 2:
            # the deployment alone: `infra up` (apply_deployments) would save this test's model manifest
            # ($RELEASEGATE_MODELS) as the shared server's models block, which later modules read
            rollback.with_options(name=late).to_deployment(
                name=late, work_pool_name="releasegate", work_queue_name="critical"
            ).apply()

    retried = eod_scoring.with_options(retries=1, retry_delay_seconds=0, on_running=[deploy_before_the_retry])
    state = retried(business_date=DAY, model_name=model, rows=2000, return_state=True)
    assert state.is_completed(), state.message
    assert len(attempts) == 2  # the first attempt failed on the missing deployment
    out = state.result()
    [mon] = bootstrap.decision_log().query(kind="monitoring", subject=f"model:{model}")
    assert mon.decision_id == out["decision_id"] and mon.details["action"] == "rollback"
    [rb] = run_by_key(f"{late}:monitoring:{model}:{DAY}:rollback:full")
    assert str(rb.id) == out["rollback"]["flow_run_id"] and out["rollback"]["status"] == "created"
    accepted = [r for r in bootstrap.decision_log().query(kind="event") if r.details.get("status") == "accepted"]
    assert sorted(r.details["event_id"] for r in accepted) == [
        f"{mon.decision_id}:retrain",
        f"{mon.decision_id}:rollback",
    ]


def test_seven_percent_drop_during_canary_drops_the_challenger_only(home):
    from flows.eod_scoring import eod_scoring
    from flows.rollback import rollback

    model, prod = "eodcanary", "prod.eodcanary"
    v1 = prod_version(model, 1, rows=4000, alias="champion")
    approve_prod_version(model, v1)
    v2 = prod_version(model, 2, rows=4000, without=WEAKER, alias="challenger")

    out = eod_scoring(business_date=DAY, model_name=model, rows=5000, canary_share=0.2)
    drop = out["shadow"]["relative_drop"]
    assert 0.05 <= drop < 0.10, drop  # measured on the batch: the challenger is ~7 % worse
    assert out["action"] == "drop_challenger" and out["reason_code"] == "KPI_DROP_CANARY"
    assert out["challenger_version"] == v2 and 900 < out["canary_rows"] < 1100
    assert "retrain" not in out
    [rb] = run_by_key(f"rollback:monitoring:{model}:{DAY}:rollback:canary")
    assert rb.parameters["method"] == "canary" and rb.parameters["expected_version"] == v2

    with InProcessWorker({"rollback": rollback}):
        fr = wait_final(rb.id)
    assert fr.state_type == StateType.COMPLETED, fr.state.message
    assert registry.aliases(prod) == {"champion": v1}  # challenger dropped, champion untouched
    [_pending, rec] = bootstrap.decision_log().query(kind="rollback")
    assert rec.details["method"] == "canary" and rec.details["dropped_challenger"] == v2
    assert rec.details["previous_version"] == rec.details["new_version"] == v1


def test_quiet_day_is_monitored_and_starts_nothing(home):
    from flows.eod_scoring import eod_scoring

    model = "eodquiet"
    prod_version(model, 1, rows=4000, alias="champion")
    out = eod_scoring(business_date=DAY, model_name=model, rows=3000, canary_share=0.0)
    assert out["action"] == "monitor" and out["reason_code"] == "WITHIN_LIMITS"
    assert "rollback" not in out and "retrain" not in out
    assert not run_by_key(f"rollback:monitoring:{model}:{DAY}:rollback:full")
    [mon] = bootstrap.decision_log().query(kind="monitoring")
    assert mon.decision_outcome.value == "accept" and mon.details["breached"] == []
    m = mon.details["measures"]  # what the model pages chart (services.model_pages)
    assert m["kpi"] and m["kpi_direction"] in ("higher", "lower") and m["rows"] == 3000
    assert m["kpi_baseline"] is not None and m["kpi_value"] is not None
    assert set(m["checks"]) >= {"drift_psi", "missing_rate", "failure_rate", "latency_p95_ms", "metric_drop"}
    assert all("threshold" in c for c in m["checks"].values()) and m["psi"]


def test_a_model_missing_from_the_manifest_fails_at_once_without_retries(home):
    """A late data file is worth the runtime policy's retries (two, 120 s apart); a model the manifest
    does not name is not: the run fails on its first attempt, saying which manifest to add it to."""
    from flows.eod_scoring import eod_scoring

    state = eod_scoring(business_date=DAY, model_name="ungoverned", return_state=True)  # shipped retries
    assert state.is_failed(), state
    assert "models[ungoverned].current_inputs" in state.message and "not in the model manifest" in state.message
    with get_client(sync_client=True) as c:
        assert c.read_flow_run(state.state_details.flow_run_id).run_count == 1  # not retried
    assert bootstrap.scheduling_store().completed(["eod-scoring"], [DAY]) == set()
    assert bootstrap.decision_log().query(kind="monitoring") == []


def test_no_champion_fails_clearly_and_does_not_mark_the_date_complete(home):
    from flows.eod_scoring import eod_scoring

    # Without the runtime policy's retries (two, 120 s apart: a version may be promoted meanwhile).
    state = eod_scoring.with_options(retries=0)(business_date=DAY, model_name="nochamp", return_state=True)
    assert state.is_failed(), state
    assert "model_name: prod.nochamp has no 'champion' alias" in state.message
    assert bootstrap.scheduling_store().completed(["eod-scoring"], [DAY]) == set()  # backfills keep waiting
    assert bootstrap.decision_log().query(kind="monitoring") == []

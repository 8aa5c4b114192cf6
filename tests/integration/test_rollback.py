"""Rollback against a real MLflow registry (SQLite in a temp dir) and a real decision log."""

from datetime import UTC, datetime, timedelta

import pytest
from credit_example.training import log_and_register, train

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.decisions import DecisionOutcome
from releasegate.policy.rollback import RollbackRefused, plan_rollback
from releasegate.services.rollback import execute_rollback
from tests.conftest import approve_prod_version


@pytest.fixture
def prod(rg_home):
    """prod.credit v1 (approved, archived) and v2 (approved champion)."""
    for seed in (1, 2):
        log_and_register(train(seed=seed, rows=800), "credit", "staging")
    for v in ("1", "2"):
        registry.copy_to("staging.credit", v, "prod.credit")
    return "prod.credit"


def test_plan_rules():
    with pytest.raises(RollbackRefused) as e:
        plan_rollback("full", "2", None, None, {"1", "2"})
    assert e.value.field == "archive" and "no approved version" in e.value.rule
    with pytest.raises(RollbackRefused, match="no final promotion decision"):
        plan_rollback("full", "2", "1", None, {"2"})
    with pytest.raises(RollbackRefused, match="already the champion"):
        plan_rollback("full", "1", "1", None, {"1"})
    with pytest.raises(RollbackRefused) as e:
        plan_rollback("canary", "2", "1", None, {"1"})
    assert e.value.field == "challenger"
    with pytest.raises(RollbackRefused) as e:
        plan_rollback("full", None, "1", None, {"1"})
    assert e.value.field == "champion"
    p = plan_rollback("full", "2", "1", "3", {"1", "2"})
    assert (p.previous_version, p.new_version, p.drop_challenger) == ("2", "1", "3")


def test_no_approved_version_is_refused_and_nothing_changes(prod):
    registry.set_alias(prod, registry.CHAMPION, "2")
    before = registry.aliases(prod)
    with pytest.raises(RollbackRefused, match="archive: no archive alias"):
        execute_rollback(
            "credit", trigger="drift", root_cause="PSI 0.4", requested_by="ops-olga", ports=bootstrap.ports()
        )
    registry.set_alias(prod, registry.ARCHIVE, "1")  # moved by hand: no promotion decision for v1
    before = registry.aliases(prod)
    with pytest.raises(RollbackRefused, match="no final promotion decision"):
        execute_rollback(
            "credit", trigger="drift", root_cause="PSI 0.4", requested_by="ops-olga", ports=bootstrap.ports()
        )
    assert registry.aliases(prod) == before
    recs = bootstrap.decision_log().query(kind="rollback")
    assert [r.decision_outcome for r in recs] == [DecisionOutcome.reject, DecisionOutcome.reject]


def test_full_rollback_restores_the_archived_version_and_documents_everything(prod):
    approve_prod_version("credit", "1")
    approve_prod_version("credit", "2")
    registry.set_alias(prod, registry.CHAMPION, "2")
    registry.set_alias(prod, registry.ARCHIVE, "1")
    rec = execute_rollback(
        "credit",
        trigger="drift",
        root_cause="PSI 0.41 on exposure_musd",
        requested_by="ops-olga",
        ports=bootstrap.ports(),
    )
    assert registry.alias_version(prod, registry.CHAMPION) == "1"
    assert registry.alias_version(prod, registry.ARCHIVE) is None
    assert registry.version_facts(prod, "2", with_hash=False).tags["rolled_back"] == "true"
    assert rec.verified and rec.verification["smoke"]["ok"] and rec.verification["champion_after"] == "1"
    assert rec.duration_seconds >= rec.registry_seconds > 0
    # The plan is recorded before any alias moves; the final record names it.
    [pending, log] = [r for r in bootstrap.decision_log().query(kind="rollback")]
    assert pending.details["status"] == "pending" and log.details["status"] == "final"
    assert log.details["pending_decision_id"] == pending.decision_id and log.details["converged"] is False
    assert log.decision_outcome is DecisionOutcome.accept and log.rollback_plan_ref == pending.rollback_plan_ref
    for field in (
        "previous_version",
        "new_version",
        "trigger",
        "started_at",
        "finished_at",
        "duration_seconds",
        "root_cause",
        "method",
        "verification",
        "follow_up",
    ):
        assert log.details[field] not in (None, ""), field
    assert (log.details["previous_version"], log.details["new_version"]) == ("2", "1")


def test_canary_rollback_drops_the_challenger_only(prod):
    approve_prod_version("credit", "1")
    registry.set_alias(prod, registry.CHAMPION, "1")
    registry.set_alias(prod, registry.CHALLENGER, "2")
    rec = execute_rollback(
        "credit",
        method="canary",
        trigger="kpi_drop",
        root_cause="7 % drop in canary",
        requested_by="ops-olga",
        ports=bootstrap.ports(),
    )
    assert registry.alias_version(prod, registry.CHAMPION) == "1"
    assert registry.alias_version(prod, registry.CHALLENGER) is None
    assert rec.dropped_challenger == "2" and rec.new_version == "1" and rec.verified


@pytest.mark.prefect
def test_rollback_flow_publishes_the_record_and_refuses_cleanly(prefect_harness, prod):
    from prefect.client.orchestration import get_client

    from flows.rollback import rollback

    manual = {"ticket_ref": "INC-7", "approved_at": datetime.now(UTC)}  # a person starts it: manual-run contract
    state = rollback(model_name="credit", reason="PSI 0.4", requested_by="ops-olga", return_state=True, **manual)
    assert state.is_failed() and "archive: no archive alias" in state.message
    approve_prod_version("credit", "1")
    approve_prod_version("credit", "2")
    registry.set_alias(prod, registry.CHAMPION, "2")
    registry.set_alias(prod, registry.ARCHIVE, "1")
    out = rollback(model_name="credit", reason="PSI 0.4", requested_by="ops-olga", trigger="drift", **manual)
    assert out["new_version"] == "1" and out["verified"] is True
    with get_client(sync_client=True) as c:
        art = c.read_latest_artifacts()
    assert any(a.key == "rollback-credit" and "previous_version | 2" in (a.data or "") for a in art)


def test_a_version_that_moved_on_since_the_verdict_is_not_rolled_back():
    with pytest.raises(RollbackRefused) as e:
        plan_rollback("full", "3", "2", None, {"2", "3"}, expected_version="2")
    assert e.value.field == "expected_version" and "champion is now v3" in e.value.rule
    with pytest.raises(RollbackRefused) as e:
        plan_rollback("canary", "2", "1", None, {"1", "2"}, expected_version="4")
    assert "challenger is now unset" in e.value.rule
    plan = plan_rollback("full", "3", "2", "4", {"2", "3"}, expected_version="3")
    assert plan.new_version == "2" and plan.drop_challenger == "4"


# ------------------------------------------- monitoring-started rollbacks are bound by the service
def _verdict(day: str):
    """The sealed monitoring decision an EOD run records when its verdict asks for a full rollback of v2."""
    from releasegate.decisions import DecisionKind, NewDecision

    return bootstrap.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.monitoring,
            decision_outcome=DecisionOutcome.reject,
            decision_rationale=f"EOD {day} credit: rollback (DRIFT_URGENT) - PSI 0.41",
            subject="model:credit",
            actor="releasegate:eod-monitoring",
            details={
                "model_name": "credit",
                "business_date": day,
                "action": "rollback",
                "reason_code": "DRIFT_URGENT",
                "rollback_method": "full",
                "retrain": True,
                "urgent": True,
                "champion": {"version": "2"},
                "flow_run_id": None,
            },
        )
    )


def _rollback_event(verdict_id: str, day: str, key: str, producer: str = "releasegate:eod-monitoring") -> dict:
    return {
        "event_id": f"{verdict_id}:rollback",
        "event_type": "monitoring.rollback.requested@v1",
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": producer,
        "idempotency_key": key,
        "payload": {
            "model_name": "credit",
            "business_date": day,
            "method": "full",
            "version": "2",
            "reason_code": "DRIFT_URGENT",
            "reason": "PSI 0.41 on exposure_musd",
        },
    }


def _champion_2_archive_1(prod: str) -> None:
    approve_prod_version("credit", "1")
    approve_prod_version("credit", "2", previous_champion="1")
    registry.set_alias(prod, registry.CHAMPION, "2")
    registry.set_alias(prod, registry.ARCHIVE, "1")


def _run(flow_run_id: str):
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from flows.rollback import rollback

    with get_client(sync_client=True) as c:
        return run_flow(rollback, flow_run=c.read_flow_run(flow_run_id), return_type="state")


def _finals() -> list:
    return [r for r in bootstrap.decision_log().query(kind="rollback") if r.details.get("status") == "final"]


@pytest.mark.prefect
def test_events_send_cannot_borrow_a_past_eod_verdict_to_skip_the_manual_run_contract(prefect_harness, prod, tmp_path):
    """Regression: a run whose event id was ``<monitoring decision id>:rollback`` counted as started by
    monitoring (model and method compared, nothing else), so anyone who can run `events send` could reuse
    any past EOD verdict (`decisions --kind monitoring` lists them) and roll prod back with no ticket."""
    import json

    from typer.testing import CliRunner

    from flows.rollback import rollback
    from releasegate.bootstrap import use_clock
    from releasegate.cli import app
    from releasegate.clock import FixedClock
    from tests.conftest import apply_deployments

    apply_deployments({"rollback": (rollback, "critical")})
    with use_clock(FixedClock(datetime.now(UTC) - timedelta(days=3))):
        past = _verdict("2026-11-20")  # a genuine verdict of an earlier business day
    _champion_2_archive_1(prod)
    path = tmp_path / "event.json"
    path.write_text(json.dumps(_rollback_event(past.decision_id, "2026-11-20", "mallory-1", producer="mallory")))
    sent = CliRunner().invoke(app, ["events", "send", str(path), "--json"])
    assert sent.exit_code == 0, sent.output
    run_id = json.loads(sent.stdout)["flow_run_id"]
    state = _run(run_id)
    assert state.is_failed() and "ticket_ref and approved_at" in state.message  # the manual-run contract
    assert "no sealed EOD rollback request names this run" in state.message
    assert registry.aliases(prod) == {"champion": "2", "archive": "1"} and _finals() == []
    manual = [r for r in bootstrap.decision_log().query(kind="manual_run") if r.actor == "releasegate:rollback"]
    assert manual and {(r.decision_outcome, r.subject) for r in manual} == {
        (DecisionOutcome.reject, f"flow_run:{run_id}")
    }


@pytest.mark.prefect
def test_the_eod_request_is_carried_out_by_its_own_run_only_fresh_and_once(prefect_harness, prod):
    from flows.rollback import rollback
    from releasegate.adapters.prefect_runs import send_event
    from releasegate.bootstrap import use_clock
    from releasegate.clock import FixedClock
    from releasegate.policy.triggers import local_business_date
    from releasegate.services.rollback_requests import monitoring_request, record_request
    from tests.conftest import apply_deployments

    apply_deployments({"rollback": (rollback, "critical")})
    _champion_2_archive_1(prod)
    day = local_business_date(datetime.now(UTC)).isoformat()
    verdict = _verdict(day)
    # what the EOD run does (services.eod.record_and_act): the event through intake, then the request
    sent = send_event(
        bootstrap.app(), _rollback_event(verdict.decision_id, day, f"monitoring:credit:{day}:rollback:full")
    )
    assert sent.status == "created"
    ports = bootstrap.ports()
    request = record_request(
        verdict, method="full", champion="2", version="2", flow_run_id=sent.flow_run_id, ports=ports
    )
    assert request is not None and bootstrap.decision_log().is_trusted(request)
    assert (
        request.details["flow_run_id"] == sent.flow_run_id
        and request.details["monitoring_decision_id"] == verdict.decision_id
    )
    assert (
        record_request(verdict, method="full", champion="2", version="2", flow_run_id=sent.flow_run_id, ports=ports)
        == request
    )

    # The same verdict's event sent again by hand under another key: another run, which no request names.
    other = send_event(bootstrap.app(), _rollback_event(verdict.decision_id, day, "by-hand", producer="mallory"))
    assert other.status == "created" and other.flow_run_id != sent.flow_run_id
    state = _run(other.flow_run_id)
    assert state.is_failed() and "ticket_ref and approved_at" in state.message
    assert registry.aliases(prod) == {"champion": "2", "archive": "1"}

    params = {
        "model_name": "credit",
        "reason": "PSI 0.41 on exposure_musd",
        "requested_by": "releasegate:monitoring",
        "trigger": "DRIFT_URGENT",
        "method": "full",
        "expected_version": "2",
        "business_date": day,
    }
    assert monitoring_request(sent.flow_run_id, params, ports).request == request
    # fresh only: on the next business day, or with another champion than the one judged, it is stale
    with use_clock(FixedClock(datetime.now(UTC) + timedelta(days=1))):
        assert "stale" in monitoring_request(sent.flow_run_id, params, bootstrap.ports()).why
    registry.set_alias(prod, registry.CHAMPION, "1")
    assert "the champion is v1, the verdict judged v2" in monitoring_request(sent.flow_run_id, params, ports).why
    registry.set_alias(prod, registry.CHAMPION, "2")
    # its parameters edited through the Prefect API: not the request any more
    assert monitoring_request(sent.flow_run_id, {**params, "expected_version": "1"}, ports).request is None

    # The request's own run: no ticket, no approval; the rollback record names the request it used up.
    state = _run(sent.flow_run_id)
    assert state.is_completed(), state.message
    assert registry.aliases(prod) == {"champion": "1"}
    [final] = _finals()
    assert final.details["rollback_request_id"] == request.decision_id and final.details["trigger"] == "DRIFT_URGENT"
    manual = [r for r in bootstrap.decision_log().query(kind="manual_run") if r.actor == "releasegate:rollback"]
    assert {r.subject for r in manual} == {f"flow_run:{other.flow_run_id}"}  # none for the request's own run
    # once: the request cannot start another rollback
    registry.set_alias(prod, registry.CHAMPION, "2")
    assert "already used" in monitoring_request(sent.flow_run_id, params, ports).why

"""Rollback against a real MLflow registry (SQLite in a temp dir) and a real decision log."""

from datetime import UTC, datetime

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
        execute_rollback("credit", trigger="drift", root_cause="PSI 0.4", requested_by="ops-olga")
    registry.set_alias(prod, registry.ARCHIVE, "1")  # moved by hand: no promotion decision for v1
    before = registry.aliases(prod)
    with pytest.raises(RollbackRefused, match="no final promotion decision"):
        execute_rollback("credit", trigger="drift", root_cause="PSI 0.4", requested_by="ops-olga")
    assert registry.aliases(prod) == before
    recs = bootstrap.decision_log().query(kind="rollback")
    assert [r.decision_outcome for r in recs] == [DecisionOutcome.reject, DecisionOutcome.reject]


def test_full_rollback_restores_the_archived_version_and_documents_everything(prod):
    approve_prod_version("credit", "1")
    approve_prod_version("credit", "2")
    registry.set_alias(prod, registry.CHAMPION, "2")
    registry.set_alias(prod, registry.ARCHIVE, "1")
    rec = execute_rollback("credit", trigger="drift", root_cause="PSI 0.41 on exposure_musd", requested_by="ops-olga")
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
        "credit", method="canary", trigger="kpi_drop", root_cause="7 % drop in canary", requested_by="ops-olga"
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

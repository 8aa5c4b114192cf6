"""The governance-run flow on the Prefect test harness, with the real decision log."""

import pytest

from releasegate import bootstrap

pytestmark = pytest.mark.prefect


def test_governance_run_records_its_decision(prefect_harness, rg_home):
    from flows.governance_run import governance_run

    state = governance_run(requested_by="alice", return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["audit_ok"] and result["policy_problems"] == []
    rec = bootstrap.decision_log().get(result["decision_id"])
    assert rec.decision_kind.value == "manual_run" and rec.decision_outcome.value == "accept"
    assert rec.details["requested_by"] == "alice" and rec.subject.startswith("flow_run:")


def test_prod_run_without_approval_is_refused_and_recorded(prefect_harness, rg_home):
    from flows.governance_run import governance_run

    state = governance_run(requested_by="bob", target_environment="prod", ticket_ref="CHG-1", return_state=True)
    assert state.is_failed() and "needs approved_at" in state.message
    [rec] = bootstrap.decision_log().query(kind="manual_run")
    assert rec.decision_outcome.value == "reject" and "approved_at" in rec.decision_rationale
    assert rec.details["ticket_ref"] == "CHG-1"


def test_governance_flow_carries_its_runtime_policy(rg_home):
    from flows.governance_run import governance_run

    assert governance_run.retries == 0 and governance_run.timeout_seconds == 900
    assert governance_run.fn.runtime_policy.concurrency_limit == 1


def test_govern_refuses_a_prod_run_approved_in_1999(prefect_harness, rg_home):
    from typer.testing import CliRunner

    from releasegate import bootstrap
    from releasegate.cli import app

    args = ["govern", "--requested-by", "alice", "--reason-code", "hotfix", "--ticket-ref", "CHG-1"]
    args += ["--approved-at", "1999-01-01T08:00:00Z", "--environment", "prod"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    out = " ".join(result.output.translate(str.maketrans("", "", "│╭╮╰╯─")).split())
    assert "approved_at: approval is older than the maximum age of 7 days" in out
    [rec] = bootstrap.decision_log().query(kind="manual_run")
    assert rec.decision_outcome.value == "reject" and "approved_at" in rec.decision_rationale

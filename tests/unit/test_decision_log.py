"""Decision log: the rules a record must meet, and the CLI, on SQLite. The store itself on SQLite and
PostgreSQL (guards, tamper detection, concurrency): tests/integration/test_decision_log_store.py."""

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from releasegate.cli import app
from releasegate.decisions import REF_FIELDS, DecisionKind, DecisionOutcome, DecisionRefused, NewDecision
from releasegate.store.decision_log import DecisionLog
from tests.support.records import deferral, drop_append_only_guard, promotion, sql


# ------------------------------------------------------------------------------------ rules
@pytest.mark.parametrize("missing", REF_FIELDS)
def test_accepted_promotion_needs_every_ref(missing, clock, sqlite_url):
    log = DecisionLog(sqlite_url, clock=clock)
    with pytest.raises(DecisionRefused) as ei:
        log.append(promotion(**{missing: None}))
    assert ei.value.field == missing and "required" in str(ei.value)
    assert log.count() == 0  # nothing half-written


def test_rejected_promotion_needs_only_the_gate_report(clock, sqlite_url):
    log = DecisionLog(sqlite_url, clock=clock)
    rec = log.append(
        promotion(
            decision_outcome=DecisionOutcome.reject,
            pm_gate_ref=None,
            risk_gate_ref=None,
            joint_release_ack_ref=None,
            rollback_plan_ref=None,
        )
    )
    assert rec.decision_outcome is DecisionOutcome.reject
    with pytest.raises(DecisionRefused) as ei:
        log.append(promotion(decision_outcome=DecisionOutcome.reject, tech_gate_report_ref=None))
    assert ei.value.field == "tech_gate_report_ref"


def test_override_needs_future_expiry_and_ticket(clock, sqlite_url):
    log = DecisionLog(sqlite_url, clock=clock)
    base = dict(
        decision_kind=DecisionKind.override,
        decision_outcome=DecisionOutcome.override,
        decision_rationale="EOD restart during freeze",
        subject="flow_run:x",
        actor="ops:bob",
        details={"ticket_ref": "INC-9"},
    )
    with pytest.raises(DecisionRefused, match="exception_expiry: required"):
        log.append(NewDecision(**base))
    with pytest.raises(DecisionRefused, match="exception_expiry: must lie in the future"):
        log.append(NewDecision(**base, exception_expiry=clock.now() - timedelta(minutes=1)))
    with pytest.raises(DecisionRefused, match="details.ticket_ref"):
        log.append(NewDecision(**{**base, "details": {}}, exception_expiry=clock.now() + timedelta(days=1)))
    rec = log.append(NewDecision(**base, exception_expiry=clock.now() + timedelta(days=1)))
    assert rec.exception_expiry == clock.now() + timedelta(days=1)


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        (DecisionKind.deferral, "deferral_reason_code"),
        (DecisionKind.event, "event_id"),
        (DecisionKind.manual_run, "requested_by"),
        (DecisionKind.retrain, "trigger"),
    ],
)
def test_kind_specific_details_are_required(kind, key, clock, sqlite_url):
    with pytest.raises(DecisionRefused) as ei:
        DecisionLog(sqlite_url, clock=clock).append(
            NewDecision(
                decision_kind=kind,
                decision_outcome=DecisionOutcome.accept,
                decision_rationale="r",
                subject="s",
                actor="a",
                details={},
            )
        )
    assert ei.value.field == f"details.{key}"


def test_blank_rationale_refused(clock, sqlite_url):
    with pytest.raises(DecisionRefused) as ei:
        DecisionLog(sqlite_url, clock=clock).append(deferral().model_copy(update={"decision_rationale": "  "}))
    assert ei.value.field == "decision_rationale"


# ------------------------------------------------------------------------------------- CLI
def test_cli_add_list_and_verify(rg_home, monkeypatch):
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "decisions",
            "add",
            "--kind",
            "deferral",
            "--outcome",
            "reject",
            "--rationale",
            "pool full",
            "--subject",
            "flow_run:1",
            "--by",
            "gateway",
            "--details",
            json.dumps({"deferral_reason_code": "CAPACITY_LIMIT", "next_evaluation_at": "2026-11-23T08:05:00Z"}),
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    written = json.loads(out.stdout)
    refused = runner.invoke(
        app,
        [
            "decisions",
            "add",
            "--kind",
            "deferral",
            "--outcome",
            "reject",
            "--rationale",
            "pool full",
            "--subject",
            "flow_run:1",
            "--by",
            "gateway",
        ],
    )
    assert refused.exit_code == 1 and "details.deferral_reason_code" in refused.output
    listed = runner.invoke(app, ["decisions", "--kind", "deferral", "--json"])
    assert [r["decision_id"] for r in json.loads(listed.stdout)] == [written["decision_id"]]
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "1 records" in ok.output


def test_cli_audit_verify_names_the_tampered_record(rg_home):
    from releasegate import bootstrap

    log = bootstrap.decision_log()
    ids = [log.append(deferral(i)).decision_id for i in range(3)]
    drop_append_only_guard(log)
    sql(log, "UPDATE decisions SET subject = 'flow_run:other' WHERE seq = 2")
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "record #2" in result.output and ids[1] in result.output

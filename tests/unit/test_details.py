"""Typed ``details`` per decision kind (``releasegate.details``) and the own kinds of migration 0005."""

from datetime import UTC, datetime

import pytest

from releasegate.decisions import DecisionKind, DecisionOutcome, DecisionRefused, NewDecision, make_record
from releasegate.details import DETAILS, PromotionDetails, PromotionStatus, details_of, required_fields
from releasegate.store.decision_log import DecisionLog
from releasegate.store.trust import SealedDecisionLog
from releasegate.store.views import approved_prod_versions, open_gate_failures, promotion_of

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _new(kind, details, outcome=DecisionOutcome.accept, subject="s", **refs):
    return NewDecision(
        decision_kind=kind,
        decision_outcome=outcome,
        decision_rationale="r",
        subject=subject,
        actor="a",
        details=details,
        **refs,
    )


def test_every_kind_has_a_details_model():
    assert set(DETAILS) == set(DecisionKind)


def test_a_missing_or_mistyped_detail_is_refused_naming_the_field():
    with pytest.raises(DecisionRefused) as e:
        make_record(_new(DecisionKind.incident, {"incident_for": "d1"}), NOW)
    assert e.value.field == "details.severity" and "required" in e.value.rule
    with pytest.raises(DecisionRefused) as e:
        make_record(_new(DecisionKind.late_run, {"lateness_seconds": "late", "late_run_mode": "skip"}), NOW)
    assert e.value.field == "details.lateness_seconds"
    assert required_fields(DecisionKind.gate_failure_ack) == ("acknowledged_decision_id", "model_name")


def test_readers_get_typed_details_and_numbers_read_as_text():
    rec = make_record(
        _new(
            DecisionKind.rollback,
            {"previous_version": 2, "new_version": 1, "status": "pending"},
            rollback_plan_ref="rollback:prod.m:2->1",
        ),
        NOW,
    )
    d = details_of(rec)
    assert (d.previous_version, d.new_version, d.status.value) == ("2", "1", "pending")
    p = PromotionDetails.model_validate({"model_name": "m", "candidate_version": 3, "status": "final", "extra": 1})
    assert p.status is PromotionStatus.final and p.candidate_version == "3"


@pytest.fixture
def log(tmp_path, clock):
    return SealedDecisionLog(f"sqlite:///{tmp_path / 'log.db'}", clock=clock, key_loader=lambda: b"k" * 32)


def _held(log, run):
    return log.append(
        _new(
            DecisionKind.promotion,
            {"model_name": "m", "candidate_version": "3", "promotion_outcome": "hold"},
            outcome=DecisionOutcome.reject,
            subject=f"promotion:{run}",
            tech_gate_report_ref="artifact:r",
        )
    )


def test_open_gate_failures_read_both_the_old_and_the_new_forms(log, clock):
    a, b, c, d = (_held(log, f"run-{i}") for i in range(4))
    # before migration 0005: an acknowledgement as an approval, an incident as a promotion record
    log.append(
        _new(
            DecisionKind.approval,
            {
                "role": "gate_failure_ack",
                "approver": "x",
                "model_name": "m",
                "candidate_version": "3",
                "acknowledged_decision_id": a.decision_id,
            },
        )
    )
    log.append(
        _new(
            DecisionKind.promotion,
            {"status": "incident", "incident_for": b.decision_id, "model_name": "m", "candidate_version": "3"},
            outcome=DecisionOutcome.reject,
            tech_gate_report_ref="artifact:r",
        )
    )
    # since 0005: their own kinds
    log.append(_new(DecisionKind.gate_failure_ack, {"acknowledged_decision_id": c.decision_id, "model_name": "m"}))
    log.append(
        _new(DecisionKind.incident, {"incident_for": d.decision_id, "severity": "P1"}, outcome=DecisionOutcome.reject)
    )
    found = {f.decision_id: (f.acknowledged, f.escalated) for f in open_gate_failures(log, clock.now())}
    assert found == {
        a.decision_id: (True, False),
        b.decision_id: (False, True),
        c.decision_id: (True, False),
        d.decision_id: (False, True),
    }
    assert [r.decision_id for r in promotion_of(log, "run-2")] == [c.decision_id]


def test_approved_prod_versions_take_only_sealed_finals(log, tmp_path):
    final = {"model_name": "m", "candidate_version": "3", "status": "final", "prod_version": "1"}
    refs = {
        k: "x"
        for k in ("tech_gate_report_ref", "pm_gate_ref", "risk_gate_ref", "joint_release_ack_ref", "rollback_plan_ref")
    }
    log.append(_new(DecisionKind.promotion, final, **refs))
    DecisionLog(log.url).append(_new(DecisionKind.promotion, final | {"prod_version": "9"}, **refs))  # unsealed
    assert approved_prod_versions(log, "m") == ["1"]


def test_the_index_is_backfilled_for_records_written_before_it(log, clock):
    """Migration 0005 on a log that already holds records: they are found through the index."""
    from alembic import command

    from releasegate.store.db import alembic_config, upgrade

    rec = _held(log, "r")
    command.downgrade(alembic_config(log.engine), "0004_guard_head_and_lengths")  # back to before the index
    upgrade(log.engine)  # 0005 again: creates the index and backfills it from the records
    assert [f.decision_id for f in open_gate_failures(log, clock.now())] == [rec.decision_id]
    assert [r.decision_id for r in promotion_of(log, "r")] == [rec.decision_id]
    assert log.verify().ok


def test_a_forged_acknowledgement_or_incident_does_not_silence_a_gate_failure(log, clock):
    held = _held(log, "run-9")
    plain = DecisionLog(log.url)  # around the service path: no seal
    plain.append(_new(DecisionKind.gate_failure_ack, {"acknowledged_decision_id": held.decision_id, "model_name": "m"}))
    plain.append(
        _new(
            DecisionKind.incident, {"incident_for": held.decision_id, "severity": "P1"}, outcome=DecisionOutcome.reject
        )
    )
    [f] = open_gate_failures(log, clock.now())
    assert f.decision_id == held.decision_id and not f.acknowledged and not f.escalated

"""The record vocabulary (``releasegate.records``): one factory per kind, the only place records are built."""

import ast
import inspect
from datetime import UTC, datetime, timedelta

import pytest

from releasegate import records
from releasegate.decisions import DecisionKind, DecisionOutcome, DecisionRefused, NewDecision, make_record
from releasegate.details import DETAILS, required_fields
from tests.conftest import ROOT

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _constructions(path):
    """Lines of ``path`` that call ``NewDecision(...)`` (by name or as an attribute)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name == "NewDecision":
                yield node.lineno


def test_no_record_is_built_outside_the_vocabulary():
    """Every record in src/ and flows/ comes from a factory of ``releasegate.records``."""
    allowed = ROOT / "src" / "releasegate" / "records.py"
    paths = [*(ROOT / "src").rglob("*.py"), *(ROOT / "flows").rglob("*.py")]
    assert allowed in paths
    found = [f"{p.relative_to(ROOT)}:{line}" for p in paths if p != allowed for line in _constructions(p)]
    assert found == [], "build records with releasegate.records, not NewDecision(...): " + ", ".join(found)


def test_the_scan_sees_a_construction(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("from releasegate import decisions\nx = decisions.NewDecision(a=1)\ny = NewDecision\n")
    assert list(_constructions(src)) == [2]


def test_one_factory_per_kind_and_it_writes_that_kind():
    assert set(records.FACTORIES) == set(DecisionKind)
    for kind, factory in records.FACTORIES.items():
        assert factory is getattr(records, kind.value)
        details = {key: "x" for key in required_fields(kind)}
        new = factory(
            decision_outcome=DecisionOutcome.reject,
            decision_rationale="r",
            subject="s",
            actor="a",
            details=details,
        )
        assert new.decision_kind is kind
        assert new.details == details
        if kind not in (DecisionKind.late_run, DecisionKind.operational_report):  # numbers, lists: below
            DETAILS[kind].model_validate(new.details)


def test_a_factory_takes_only_the_refs_of_its_kind():
    for kind, factory in records.FACTORIES.items():
        params = set(inspect.signature(factory).parameters)
        assert {"decision_outcome", "decision_rationale", "subject", "actor", "details"} <= params
        if kind is not DecisionKind.promotion:
            assert "joint_release_ack_ref" not in params, kind
        if kind is not DecisionKind.override:
            assert "exception_expiry" not in params, kind
    with pytest.raises(TypeError):
        records.deferral(
            decision_outcome=DecisionOutcome.reject,
            decision_rationale="r",
            subject="s",
            actor="a",
            details={},
            rollback_plan_ref="p",
        )


def test_a_factory_builds_the_same_record_as_the_fields_spelled_out():
    """Same kind, subject, outcome, refs, expiry and details, value for value (the log hashes them)."""
    expiry = NOW + timedelta(hours=4)
    details = {"ticket_ref": "CHG-1", "deployment": "eod/credit", "attempts": 3, "ratio": 0.5, "n": None}
    by_factory = records.override(
        decision_outcome=DecisionOutcome.override,
        decision_rationale="deferral overridden by ops: storm",
        subject=records.flow_run_subject("r-1"),
        actor="ops",
        exception_expiry=expiry,
        details=details,
    )
    spelled = NewDecision(
        decision_kind=DecisionKind.override,
        decision_outcome=DecisionOutcome.override,
        decision_rationale="deferral overridden by ops: storm",
        subject="flow_run:r-1",
        actor="ops",
        exception_expiry=expiry,
        details=details,
    )
    assert by_factory == spelled
    a, b = make_record(by_factory, NOW, decision_id="d-1"), make_record(spelled, NOW, decision_id="d-1")
    assert a.content() == b.content()
    assert by_factory.details is not details  # copied: a later change to the caller's dict is not recorded


def test_the_details_are_checked_by_the_kind_model_when_appended():
    new = records.monitoring(
        decision_outcome=DecisionOutcome.accept,
        decision_rationale="EOD",
        subject=records.model_subject("credit"),
        actor="releasegate:eod-monitoring",
        details={"model_name": "credit", "business_date": "2026-03-02", "action": "keep"},
    )
    with pytest.raises(DecisionRefused) as refused:
        make_record(new, NOW)
    assert refused.value.field == "details.reason_code"


def test_subjects():
    assert records.model_subject("credit") == "model:credit"
    assert records.model_version_subject("credit", "3") == "model:credit:v3"
    assert records.flow_run_subject("abc") == "flow_run:abc"
    assert records.promotion_subject("abc") == "promotion:abc"
    assert records.deployment_subject("eod/credit") == "deployment:eod/credit"
    assert records.event_subject("x.y@v1") == "event:x.y@v1"
    assert records.deferral_storm_subject("batch", "default") == "deferral-storm:batch/default"
    assert (
        records.operations_week_subject("batch", datetime(2026, 3, 2, tzinfo=UTC)) == "operations:batch:week:2026-03-02"
    )
    assert records.APPROVERS_CONFIG_SUBJECT == "approvers-config"

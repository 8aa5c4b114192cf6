"""The console's operations and audit pages over the real use cases (``bootstrap.console_app``'s
``operations_desk`` and ``audit_desk``) on a real sealed log and scheduling store: a deferral as the
gateway records it, a gate failure that escalates to a P1 incident and is closed by its acknowledgement
from the page, a storm incident opened and closed; the audit page's checkpoints, a verification started
from the page and recorded, and the export streamed as ``releasegate audit export`` writes it."""

import json
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from releasegate import records
from releasegate.decisions import DecisionKind, DecisionOutcome
from tests.support.passkeys import ORIGIN, SoftAuthenticator


@pytest.fixture
def world(rg_home, clock, monkeypatch):
    from releasegate import bootstrap

    with bootstrap.use_clock(clock):
        yield bootstrap.app()


def _held(app, run: str):
    return app.log.append(
        records.promotion(
            decision_outcome=DecisionOutcome.reject,
            decision_rationale="held: no better than the champion",
            subject=records.promotion_subject(run),
            actor="releasegate:promotion",
            tech_gate_report_ref="artifact:r",
            details={"model_name": "credit", "candidate_version": "3", "promotion_outcome": "hold"},
        )
    )


def _storm(app, state: str, opener: str | None = None):
    return app.log.append(
        records.incident(
            decision_outcome=DecisionOutcome.accept if state == "closed" else DecisionOutcome.reject,
            decision_rationale=f"deferral storm in queue 'backfill' ({state})",
            subject=records.deferral_storm_subject("releasegate", "backfill"),
            actor="releasegate:deferral-sweeper",
            details={
                "incident_for": "queue:backfill",
                "incident_kind": "deferral_storm",
                "storm_state": state,
                "storm_incident": opener,
                "severity": "P1" if state == "incident" else ("P3" if state == "alert" else "closed"),
            },
        )
    )


def test_the_operations_desk_reads_and_acknowledges_through_the_services(world, clock):
    from releasegate import bootstrap
    from releasegate.errors import Refused
    from releasegate.services.gate_failures import escalate_unacknowledged

    now = clock.now()
    world.store.record_deferral(
        "run-1",
        "credit-eod/credit-eod",
        "CAPACITY_LIMIT",
        now + timedelta(minutes=4),
        "pool full",
        now,
        predicted_start_at=now + timedelta(minutes=11),
    )
    world.store.record_deferral("run-2", "fraud-eod/fraud-eod", "WINDOW", now + timedelta(hours=2), "window", now)
    held = _held(world, "run-a")
    opened = _storm(world, "alert")
    clock.advance(minutes=31)
    [escalated] = escalate_unacknowledged(world, emit_event=lambda **_: None)
    _storm(world, "incident", opened.decision_id)
    _storm(world, "closed", opened.decision_id)

    desk = bootstrap.operations_desk(world)
    by_run = {d.flow_run_id: d for d in desk.deferrals()}
    assert by_run["run-1"].sla == "alert" and by_run["run-1"].waited_minutes == 31
    assert by_run["run-1"].predicted_start_at == now + timedelta(minutes=11)
    assert by_run["run-2"].predicted_start_at is None  # a window decides, not a slot: as the CLI says
    [failure] = desk.gate_failures()
    assert failure.decision_id == held.decision_id and failure.incident and not failure.acknowledged
    incidents = {i.kind: i for i in desk.incidents()}
    assert incidents["deferral_storm"].state == "closed" and incidents["deferral_storm"].severity == "P1"
    assert incidents["deferral_storm"].decision_id == opened.decision_id
    assert incidents["gate_failure_unacknowledged"].state == "open"

    ack = desk.acknowledge(held.decision_id, "oncall-otto", "retrain")
    assert world.log.get(ack).actor == "oncall-otto"
    gf = {i.kind: i for i in desk.incidents()}["gate_failure_unacknowledged"]
    assert gf.state == "closed" and gf.closed_by == ack and gf.decision_id == escalated["incident_decision"]
    with pytest.raises(Refused, match="already acknowledged"):
        desk.acknowledge(held.decision_id, "oncall-otto", "again")


def test_the_audit_page_over_the_real_log_verifies_on_request_and_streams_the_export(world, clock, monkeypatch):
    from releasegate import bootstrap
    from releasegate.console import create_app
    from releasegate.console_ports import ConsolePorts, ConsoleSettings
    from releasegate.services.approval_desk import DecisionJournal
    from releasegate.services.audit import take_checkpoint
    from tests.support.console import FakeDesk, FakeDirectory
    from tests.support.console_ops import form_csrf

    for n in range(30):
        _held(world, f"run-{n}")
    s = world.settings
    take_checkpoint(world.log, s.signing_key(), clock, s.resolved_checkpoint_dir)
    key = SoftAuthenticator()
    from releasegate.policy.approvers import ApproverConfig

    directory = FakeDirectory(ApproverConfig(auditors=["audit-ida"], passkeys={"audit-ida": key.passkey()}), clock)
    ports = ConsolePorts(
        desk=FakeDesk(directory, clock),
        directory=directory,
        journal=DecisionJournal(world.log),
        clock=clock,
        audit=bootstrap.audit_desk(world),
    )
    from tests.support.console import Rig

    client = TestClient(
        create_app(ports, ConsoleSettings(rp_id="localhost", origin=ORIGIN, secret_key="t")), base_url=ORIGIN
    )
    rig = Rig(client, {"audit-ida": key}, directory, ports.desk, None, clock)  # type: ignore[arg-type]
    assert rig.sign_in("audit-ida").status_code == 200

    page = client.get("/audit").text
    assert "honoured</span>" in page and "The newest checkpoint vouches for the chain up to #30" in page
    assert 'href="/models/credit/versions/3/evidence"' in page
    client.post("/audit/verify", data={"csrf_token": form_csrf(page)})
    for _ in range(400):
        page = client.get("/audit").text
        if "running</span>" not in page:
            break
        time.sleep(0.05)
    [last] = world.log.query(kind=DecisionKind.event, subject="console:audit-verify", newest_first=True, limit=1)
    assert last.details["verdict"] == "intact" and last.actor == "audit-ida"
    assert "intact</span> 31 records" in page  # the 30 holds and the sign-in: the chain as it was walked

    with client.stream("GET", "/audit/export") as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    records_, checkpoints = [x for x in lines if x["type"] == "record"], [x for x in lines if x["type"] == "checkpoint"]
    assert len(records_) == world.log.count() and len(checkpoints) == 1 and checkpoints[0]["last_seq"] == 30

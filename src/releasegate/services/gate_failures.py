"""Gate failures of promotions (prod-near: every promotion targets prod) and their acknowledgement.

A hold or reject emits ``releasegate.gate.failed``; if nobody acknowledges it within 30 minutes
(``releasegate gate-failures ack``) the sweeper opens a P1 incident (``releasegate.incident.opened``),
once, and records it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from releasegate import records
from releasegate.app import App
from releasegate.decisions import DecisionOutcome
from releasegate.policy.deferrals import gate_failures_to_escalate
from releasegate.store import views

LOOKBACK = timedelta(days=7)


def open_gate_failures(app: App) -> tuple[list[dict[str, Any]], set[str | None], set[str | None]]:
    """(gate failures of the lookback window, acknowledged decision ids, escalated decision ids), read
    through the indexed view (``store.views.open_gate_failures``)."""
    since = app.clock.now() - LOOKBACK
    found = views.open_gate_failures(app.log, since)
    failures = [
        {
            "decision_id": f.decision_id,
            "at": f.at,
            "subject": f.subject,
            "model_name": f.model_name,
            "candidate_version": f.candidate_version,
            "outcome": f.outcome,
            "report": f.report,
            "rationale": f.rationale,
        }
        for f in found
    ]
    acked: set[str | None] = {f.decision_id for f in found if f.acknowledged}
    escalated: set[str | None] = {f.decision_id for f in found if f.escalated}
    return failures, acked, escalated


def acknowledge(app: App, decision_id: str, by: str, note: str) -> str:
    log = app.log
    failures, acked, _ = open_gate_failures(app)
    match = next((f for f in failures if f["decision_id"] == decision_id), None)
    if match is None:
        raise ValueError(f"decision_id: {decision_id} is not a gate failure of the last 7 days")
    if decision_id in acked:
        raise ValueError(f"decision_id: {decision_id} is already acknowledged")
    rec = log.append(
        records.gate_failure_ack(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"gate failure acknowledged by {by}: {note}",
            subject=match["subject"],
            actor=by,
            details={
                "acknowledged_by": by,
                "model_name": match["model_name"],
                "candidate_version": match["candidate_version"],
                "acknowledged_decision_id": decision_id,
                "note": note,
            },
        )
    )
    return rec.decision_id


def escalate_unacknowledged(app: App, emit_event: Callable[..., Any] | None = None) -> list[dict]:
    """Open one P1 incident per gate failure unacknowledged for 30 minutes: an event (Prefect's, by
    default) and an ``incident`` record."""
    if emit_event is None:
        from releasegate.adapters import prefect_events

        emit_event = prefect_events.emit_event
    now = app.clock.now()
    failures, acked, escalated = open_gate_failures(app)
    out = []
    for f in gate_failures_to_escalate(failures, acked, escalated, now):
        waited = int((now - f["at"]) / timedelta(minutes=1))
        event = emit_event(
            event="releasegate.incident.opened",
            resource={
                "prefect.resource.id": f"releasegate.model.{f['model_name']}",
                "prefect.resource.name": f"{f['model_name']} v{f['candidate_version']}",
            },
            payload={
                "severity": "P1",
                "reason": "gate failure not acknowledged within 30 min",
                "gate_failure_decision_id": f["decision_id"],
                "waited_minutes": waited,
            },
        )
        rec = app.log.append(
            records.incident(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"P1 incident: gate failure of {f['model_name']} v{f['candidate_version']} "
                f"not acknowledged for {waited} min",
                subject=f["subject"],
                actor="releasegate:deferral-sweeper",
                tech_gate_report_ref=f["report"],
                details={
                    "incident_for": f["decision_id"],
                    "incident_kind": "gate_failure_unacknowledged",
                    "severity": "P1",
                    "model_name": f["model_name"],
                    "candidate_version": f["candidate_version"],
                    "event_id": str(event.id) if event else None,
                },
            )
        )
        out.append(
            {
                "gate_failure": f["decision_id"],
                "incident_decision": rec.decision_id,
                "waited_minutes": waited,
                "model_name": f["model_name"],
                "candidate_version": f["candidate_version"],
            }
        )
    return out

"""Gate failures of promotions (prod-near: every promotion targets prod) and their acknowledgement.

A hold or reject emits ``releasegate.gate.failed``; if nobody acknowledges it within 30 minutes
(``releasegate gate-failures ack``) the sweeper opens a P1 incident (``releasegate.incident.opened``),
once, and records it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..decisions import DecisionKind, DecisionOutcome, NewDecision
from ..deferrals import gate_failures_to_escalate
from . import context

LOOKBACK = timedelta(days=7)


def open_gate_failures() -> tuple[list[dict[str, Any]], set[str | None], set[str | None]]:
    """(gate failures of the lookback window, acknowledged decision ids, escalated decision ids); an id
    read from ``details`` may be missing (None): it matches no failure."""
    log = context.decision_log()
    since = context.clock().now() - LOOKBACK
    failures: list[dict[str, Any]] = []
    acked: set[str | None] = set()
    escalated: set[str | None] = set()
    for rec in log.query(since=since):
        d = rec.details
        if (
            rec.decision_kind is DecisionKind.promotion
            and d.get("promotion_outcome") in ("hold", "reject")
            and d.get("status") not in ("incident",)
        ):
            failures.append(
                {
                    "decision_id": rec.decision_id,
                    "at": rec.decision_timestamp,
                    "subject": rec.subject,
                    "model_name": d.get("model_name"),
                    "candidate_version": d.get("candidate_version"),
                    "outcome": d.get("promotion_outcome"),
                    "report": rec.tech_gate_report_ref,
                    "rationale": rec.decision_rationale,
                }
            )
        elif rec.decision_kind is DecisionKind.approval and d.get("role") == "gate_failure_ack":
            acked.add(d.get("acknowledged_decision_id"))
        elif rec.decision_kind is DecisionKind.promotion and d.get("status") == "incident":
            escalated.add(d.get("incident_for"))
    return failures, acked, escalated


def acknowledge(decision_id: str, by: str, note: str) -> str:
    log = context.decision_log()
    failures, acked, _ = open_gate_failures()
    match = next((f for f in failures if f["decision_id"] == decision_id), None)
    if match is None:
        raise ValueError(f"decision_id: {decision_id} is not a gate failure of the last 7 days")
    if decision_id in acked:
        raise ValueError(f"decision_id: {decision_id} is already acknowledged")
    rec = log.append(
        NewDecision(
            decision_kind=DecisionKind.approval,
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"gate failure acknowledged by {by}: {note}",
            subject=match["subject"],
            actor=by,
            details={
                "role": "gate_failure_ack",
                "approver": by,
                "model_name": match["model_name"],
                "candidate_version": match["candidate_version"],
                "acknowledged_decision_id": decision_id,
                "note": note,
            },
        )
    )
    return rec.decision_id


def escalate_unacknowledged() -> list[dict]:
    from prefect.events import emit_event

    now = context.clock().now()
    failures, acked, escalated = open_gate_failures()
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
        rec = context.decision_log().append(
            NewDecision(
                decision_kind=DecisionKind.promotion,
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"P1 incident: gate failure of {f['model_name']} v{f['candidate_version']} "
                f"not acknowledged for {waited} min",
                subject=f["subject"],
                actor="releasegate:deferral-sweeper",
                tech_gate_report_ref=f["report"],
                details={
                    "status": "incident",
                    "incident_for": f["decision_id"],
                    "severity": "P1",
                    "model_name": f["model_name"],
                    "candidate_version": f["candidate_version"],
                    "event_id": str(event.id) if event else None,
                },
            )
        )
        out.append({"gate_failure": f["decision_id"], "incident_decision": rec.decision_id, "waited_minutes": waited})
    return out

"""What the console's operations page reads and does (``console_ports.Operations``), over the same use cases
as the CLI: the open deferrals of ``releasegate deferrals`` (the gateway records each deferral of a Prefect
run in the scheduling store, with its reason, next evaluation and predicted start), the gate failures and
their acknowledgement of ``releasegate gate-failures`` (``services.gate_failures``), and the incidents
releasegate recorded (``DecisionKind.incident``).

An incident is *open* until the log records it closed. Two kinds close:

* a queue's deferral storm (``incident_kind`` ``deferral_storm``): the sweeper records ``storm_state``
  ``closed`` (naming the opening record in ``storm_incident``) when the queue has no open deferral left;
* a gate failure nobody acknowledged (``gate_failure_unacknowledged``): its gate failure's
  acknowledgement, recorded later, answers it.

The other kinds (the alias guard's, the scheduled-start KPI's) are one-shot records: shown as *recorded*.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from releasegate.app import App
from releasegate.console_ports import DeferralView, GateFailureView, IncidentView
from releasegate.decisions import DecisionKind, DecisionRecord
from releasegate.errors import Refused
from releasegate.policy.deferrals import GATE_FAILURE_ACK_MINUTES, WAKEABLE, sla_state
from releasegate.services import gate_failures

LOOKBACK = gate_failures.LOOKBACK  # incidents and gate failures of the last 7 days


def _minutes(since: datetime, now: datetime) -> int:
    return max(0, int((now - since) / timedelta(minutes=1)))


class OperationsDesk:
    """``console_ports.Operations`` over the application object (its log, store and clock)."""

    def __init__(
        self,
        app: App,
        sla_minutes: Callable[[], tuple[int, int]] = lambda: (30, 60),
    ) -> None:
        self.app = app
        self.sla_minutes = sla_minutes  # (alert, incident): the capacity policy's, as the sweeper escalates

    def deferrals(self) -> list[DeferralView]:
        now = self.app.clock.now()
        alert, incident = self.sla_minutes()
        out = []
        for d in self.app.store.deferrals("open"):
            predicted = (d.predicted_start_at or d.next_evaluation_at) if d.reason_code in WAKEABLE else None
            out.append(
                DeferralView(
                    flow_run_id=d.flow_run_id,
                    deployment=d.deployment,
                    reason_code=d.reason_code,
                    first_deferred_at=d.first_deferred_at,
                    next_evaluation_at=d.next_evaluation_at,
                    predicted_start_at=predicted,
                    attempts=d.attempts,
                    waited_minutes=_minutes(d.first_deferred_at, now),
                    sla=sla_state(d.first_deferred_at, now, alert, incident).value,
                    alert_minutes=alert,
                    incident_minutes=incident,
                    explanation=d.explanation,
                )
            )
        return out

    def gate_failures(self) -> list[GateFailureView]:
        now = self.app.clock.now()
        failures, acked, escalated = gate_failures.open_gate_failures(self.app)
        views = [
            GateFailureView(
                decision_id=str(f["decision_id"]),
                at=f["at"],
                model_name=str(f["model_name"]),
                candidate_version=str(f["candidate_version"]),
                outcome=str(f["outcome"]),
                rationale=str(f["rationale"] or ""),
                acknowledged=f["decision_id"] in acked,
                incident=f["decision_id"] in escalated,
                waited_minutes=_minutes(f["at"], now),
                ack_minutes=GATE_FAILURE_ACK_MINUTES,
            )
            for f in failures
        ]
        return sorted(views, key=lambda v: v.at, reverse=True)

    def incidents(self) -> list[IncidentView]:
        since = self.app.clock.now() - LOOKBACK
        log = self.app.log
        found = log.query(kind=DecisionKind.incident, since=since)
        acks = {
            r.details.get("acknowledged_decision_id"): r
            for r in log.query(kind=DecisionKind.gate_failure_ack, since=since)
            if log.is_trusted(r)
        }
        return incidents_of([r for r in found if log.is_trusted(r)], acks)

    def acknowledge(self, decision_id: str, by: str, note: str) -> str:
        if not by.strip():
            raise Refused("by", "required")
        try:
            return gate_failures.acknowledge(self.app, decision_id, by, note)
        except ValueError as exc:  # "<field>: <rule>", as the CLI prints it
            field, _, rule = str(exc).partition(": ")
            raise Refused(field if rule else "decision_id", rule or str(exc)) from None


def incidents_of(found: list[DecisionRecord], acks: dict[Any, DecisionRecord]) -> list[IncidentView]:
    """The incidents among ``found`` (in log order), each with its state: a storm's records are one
    incident (the opening record names it), closed by its ``closed`` record; an unacknowledged gate
    failure's incident is closed by the failure's acknowledgement (``acks``: by acknowledged id)."""
    storms: dict[str, list[DecisionRecord]] = {}
    out: list[IncidentView] = []
    for r in found:
        d = r.details
        kind = str(d.get("incident_kind") or "incident")
        if kind == "deferral_storm":
            storms.setdefault(str(d.get("storm_incident") or r.decision_id), []).append(r)
            continue
        closing = acks.get(d.get("incident_for")) if kind == "gate_failure_unacknowledged" else None
        state = "closed" if closing is not None else ("open" if kind == "gate_failure_unacknowledged" else "recorded")
        out.append(
            IncidentView(
                decision_id=r.decision_id,
                at=r.decision_timestamp,
                kind=kind,
                severity=str(d.get("severity") or "?"),
                subject=r.subject,
                summary=r.decision_rationale,
                state=state,
                closed_at=closing.decision_timestamp if closing is not None else None,
                closed_by=closing.decision_id if closing is not None else None,
            )
        )
    for opener, chain in storms.items():
        last = chain[-1]
        closed = last.details.get("storm_state") == "closed"
        severities = [str(r.details.get("severity")) for r in chain if r.details.get("storm_state") != "closed"]
        out.append(
            IncidentView(
                decision_id=opener,
                at=chain[0].decision_timestamp,
                kind="deferral_storm",
                severity="P1" if "P1" in severities else (severities[-1] if severities else "?"),
                subject=last.subject,
                summary=(chain[-2] if closed and len(chain) > 1 else last).decision_rationale,
                state="closed" if closed else "open",
                closed_at=last.decision_timestamp if closed else None,
                closed_by=last.decision_id if closed else None,
            )
        )
    return sorted(out, key=lambda v: v.at, reverse=True)

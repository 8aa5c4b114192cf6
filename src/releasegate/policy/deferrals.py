"""Deferral SLA: how long a run has waited since its *first* deferral, and what that escalates to.

Prefect never marks a run Late while it sits in a ``Scheduled`` state named ``Deferred``, and every
re-deferral restarts Prefect's own timers, so releasegate keeps the first deferral time itself
(``deferrals`` table) and the sweeper escalates from it:

* waited ≥ ``sla_alert_minutes`` (30): ``alert`` → Prefect event ``releasegate.deferral.sla-breached``
* waited ≥ ``sla_incident_minutes`` (60): ``incident`` → Prefect event ``releasegate.incident.opened``

Each escalation is emitted once per deferral.

The sweeper also wakes deferred runs early (``runs_to_wake``): a run deferred for capacity
(PRIORITY_CONFLICT, CAPACITY_LIMIT, QUEUE_LIMIT) waits until ``next_evaluation_at``, which the reservation
rule sets from *conservative* duration estimates (a high percentile of each deployment's runs). When the
blocking run ends sooner, the sweeper asks the same gateway rule again, in queue priority order and
oldest deferral first within a queue, and wakes the runs it would admit now, each counted as holding a
slot for the next; a woken run goes back to Prefect's queue at its first deferral time, so it keeps its
place ahead of younger runs. Prefect has no
such thing: a Scheduled run waits for its scheduled time. Pure module.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from releasegate.policy.capacity import ActiveRun, Admitted, CapacitySnapshot, GatewayConfig, RunRequest, decider

SLA_EVENTS = {
    "alert": "releasegate.deferral.sla-breached",
    "incident": "releasegate.incident.opened",
}


class SlaState(StrEnum):
    ok = "ok"
    alert = "alert"
    incident = "incident"


_ORDER = [SlaState.ok, SlaState.alert, SlaState.incident]


def sla_state(
    first_deferred_at: datetime, now: datetime, alert_minutes: int = 30, incident_minutes: int = 60
) -> SlaState:
    waited = now - first_deferred_at
    if waited >= timedelta(minutes=incident_minutes):
        return SlaState.incident
    if waited >= timedelta(minutes=alert_minutes):
        return SlaState.alert
    return SlaState.ok


def escalations_due(current: SlaState, already: SlaState) -> list[SlaState]:
    """The escalations to emit now: every level above ``already`` up to ``current``."""
    return [s for s in _ORDER if _ORDER.index(already) < _ORDER.index(s) <= _ORDER.index(current)]


GATE_FAILURE_ACK_MINUTES = 30


def gate_failures_to_escalate(
    failures: list[dict[str, Any]],
    acknowledged: AbstractSet[str | None],
    escalated: AbstractSet[str | None],
    now: datetime,
    ack_minutes: int = GATE_FAILURE_ACK_MINUTES,
) -> list[dict[str, Any]]:
    """Gate failures (``{"decision_id", "at", …}``) older than ``ack_minutes`` with neither an
    acknowledgement nor an incident yet: each becomes one ``releasegate.incident.opened`` (P1)."""
    limit = timedelta(minutes=ack_minutes)
    return [
        f
        for f in failures
        if f["decision_id"] not in acknowledged and f["decision_id"] not in escalated and now - f["at"] >= limit
    ]


# deferrals a freed slot can end early; windows and upstreams have their own end times
WAKEABLE = frozenset({"PRIORITY_CONFLICT", "CAPACITY_LIMIT", "QUEUE_LIMIT"})


def runs_to_wake(
    deferred: list[RunRequest], snapshot: CapacitySnapshot, config: GatewayConfig, now: datetime
) -> list[RunRequest]:
    """The deferred runs (``deferred``: oldest deferral first) the gateway would admit now, asked in queue
    priority order (EOD before backfills), oldest deferral first within a queue. Each run woken counts as
    holding a slot (until its expected end) when the next one is asked, and no longer as a reservation
    (a deferred higher-priority run in ``snapshot.upcoming``), so no more are woken than the pool and
    queues hold; the gateway still decides when each run starts."""
    woken: list[RunRequest] = []
    active = list(snapshot.active)
    upcoming = list(snapshot.upcoming)
    decide = decider(snapshot, config, now)
    # Whether the gateway admits a run depends on its deployment, queue, expected duration and business
    # dates, never on its id or deferral count (those only set the next evaluation time): a refusal holds
    # for every run alike until the next wake changes the pool.
    refused: set[tuple[Any, ...]] = set()
    for request in sorted(deferred, key=lambda r: config.queue(r.queue).priority):  # stable: oldest first
        if len(active) >= config.pool_concurrency_limit:
            break  # the pool is full: the gateway defers every run (CAPACITY_LIMIT), no need to ask
        alike = (request.deployment, request.queue, request.expected_seconds, tuple(request.business_dates))
        if alike in refused:
            continue
        if not isinstance(decide(request), Admitted):
            refused.add(alike)
        else:
            refused.clear()
            woken.append(request)
            seconds = request.expected_seconds
            active.append(
                ActiveRun(
                    flow_run_id=request.flow_run_id,
                    deployment=request.deployment,
                    queue=request.queue,
                    state="pending",
                    expected_end=now + timedelta(seconds=seconds) if seconds is not None else None,
                )
            )
            upcoming = [u for u in upcoming if u.flow_run_id != request.flow_run_id]
            decide = decider(snapshot.model_copy(update={"active": active, "upcoming": upcoming}), config, now)
    return woken

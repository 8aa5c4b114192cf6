"""The deferral backlog on Prefect: runs held behind a pool or queue cap recorded as deferrals, and one
incident per queue while its deferrals are past the SLA (a storm), for the deferral sweeper."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterNextScheduledStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import StateType
from prefect.events import emit_event

from releasegate import records
from releasegate.adapters.prefect_gate import DEFERRED, deployment_names, expected_durations, run_queue
from releasegate.adapters.prefect_query import read_all_flow_runs
from releasegate.app import App
from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision
from releasegate.policy.capacity import ActiveRun, GatewayConfig
from releasegate.policy.deferrals import STORM_EVENTS, SlaState, WaitingRun, cap_waits, storm_change
from releasegate.store import capacity_plans
from releasegate.store.scheduling_store import Deferral

__all__ = ["CAP_WAIT_GRACE", "escalate_storms", "record_cap_waits", "sweeper_record"]


def sweeper_record(d: Deferral, outcome: DecisionOutcome, rationale: str, **details: Any) -> NewDecision:
    """A ``deferral`` decision of the sweeper's about one open deferral: its fields, then ``details``."""
    return records.deferral(
        decision_outcome=outcome,
        decision_rationale=rationale,
        subject=records.flow_run_subject(d.flow_run_id),
        actor="releasegate:deferral-sweeper",
        details={
            "deployment": d.deployment,
            "deferral_reason_code": d.reason_code,
            "next_evaluation_at": d.next_evaluation_at.isoformat(),
            "deferred_since": d.first_deferred_at.isoformat(),
            **details,
        },
    )


# A due run not taken this long after it was due is not merely between two polls of its worker
# (PREFECT_WORKER_QUERY_SECONDS, 10 s by default, plus the prefetch).
CAP_WAIT_GRACE = timedelta(seconds=60)


def record_cap_waits(app: App, client, config: GatewayConfig, now: datetime) -> list[dict]:
    """Runs of gated deployments that are due but held back by a pool or queue cap are deferrals too: no
    worker takes them, so the gateway never sees them. Each is recorded once per wait (a deferral opened
    from when it was due, ``CAPACITY_LIMIT`` or ``QUEUE_LIMIT``, ``next_evaluation_at`` = its predicted
    start, and a ``deferral`` decision); its Prefect state is left alone, so it starts exactly when Prefect
    would start it. The gate closes the deferral when a worker takes the run."""
    store, log = app.store, app.log
    pool = WorkPoolFilter(name=WorkPoolFilterName(any_=[config.pool_name]))
    due = read_all_flow_runs(
        client,
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
            next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(before_=now - CAP_WAIT_GRACE),
        ),
        work_pool_filter=pool,
        max_runs=2000,
    )
    due = [r for r in due if r.state_name != DEFERRED]  # the gateway's own deferrals are open already
    if not due:
        return []
    running = read_all_flow_runs(
        client,
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))
        ),
        work_pool_filter=pool,
    )
    names = deployment_names(client, due + running)
    gated = {n for n, g in config.deployments.items() if g.gated}
    due = [r for r in due if names.get(str(r.deployment_id)) in gated]
    if not due:
        return []
    durations = expected_durations(app, client, names)
    active = []
    for r in running:
        name = names.get(str(r.deployment_id), "")
        secs = durations.get(str(r.deployment_id))
        started = r.start_time or now
        active.append(
            ActiveRun(
                flow_run_id=str(r.id),
                deployment=name or None,
                queue=run_queue(config, name, r.work_queue_name),
                state="running",
                expected_end=started + timedelta(seconds=secs) if secs is not None else None,
            )
        )
    waiting = [
        WaitingRun(
            flow_run_id=str(r.id),
            deployment=names[str(r.deployment_id)],
            queue=run_queue(config, names[str(r.deployment_id)], r.work_queue_name),
            due=r.next_scheduled_start_time or r.expected_start_time or now,
            expected_seconds=durations.get(str(r.deployment_id)),
        )
        for r in due
    ]
    recorded = []
    for w in cap_waits(waiting, active, config, now):
        open_ = store.get_deferral(w.flow_run_id)
        if open_ is not None and open_.status == "open":
            continue  # recorded once per wait, not per sweep
        cap = "pool" if w.reason_code == "CAPACITY_LIMIT" else f"queue {w.queue!r}"
        explanation = (
            f"{w.deployment} run due at {w.due.isoformat()} waits for a slot: the {cap} cap is full; "
            f"predicted to start at {w.predicted_start_at.isoformat()}"
        )
        d = store.record_deferral(
            w.flow_run_id,
            w.deployment,
            w.reason_code,
            w.predicted_start_at,
            explanation,
            now,
            since=w.due,
            predicted_start_at=w.predicted_start_at,
        )
        rec = log.append(
            sweeper_record(
                d,
                DecisionOutcome.reject,
                explanation,
                predicted_start_at=w.predicted_start_at.isoformat(),
                queue=w.queue,
                held_by="prefect-cap",
            ),
            now=now,
        )
        recorded.append({"flow_run_id": w.flow_run_id, "reason_code": w.reason_code, "decision_id": rec.decision_id})
    return recorded


def _storm_subject(config: GatewayConfig, queue: str) -> str:
    return records.deferral_storm_subject(config.pool_name, queue)


def escalate_storms(
    app: App, config: GatewayConfig, by_queue: dict[str, list[Deferral]], now: datetime
) -> dict[str, dict]:
    """Per queue of the pool: open, escalate or close its storm incident (``policy.deferrals.storm_change``)
    from its open deferrals, one ``incident`` decision and one Prefect event per change, naming the count,
    the oldest deferral, the predicted drain time and the last capacity plan's recommended pool. Returns,
    per queue with a storm open now, its incident's decision id and the event id of this sweep's change."""
    log = app.log
    home = app.settings.home_dir
    out: dict[str, dict] = {}
    for q in config.queues:
        subject = _storm_subject(config, q.name)
        last = log.query(kind=DecisionKind.incident, subject=subject, newest_first=True, limit=1)
        state = last[0].details.get("storm_state") if last else None
        current = None if state in (None, "closed") else SlaState(state)
        deferrals = by_queue.get(q.name, [])
        change = storm_change(
            q.name,
            [d.first_deferred_at for d in deferrals],
            [d.next_evaluation_at for d in deferrals],
            current,
            now,
            config.sla_alert_minutes,
            config.sla_incident_minutes,
        )
        if change is None:
            if current is not None:
                out[q.name] = {"decision_id": last[0].details.get("storm_incident") or last[0].decision_id}
            continue
        recommended = capacity_plans.last_recommendation(home)
        payload = {
            "queue": q.name,
            "storm_state": change.state,
            "open_deferrals": change.count,
            "deferred_since": change.oldest.isoformat() if change.oldest else None,
            "waited_minutes": change.waited_minutes,
            "predicted_drain_at": change.drain_at.isoformat() if change.drain_at else None,
            "recommended_pool_cap": recommended,
            "pool_concurrency_limit": config.pool_concurrency_limit,
            "deferral_reason_code": "STORM",
            "severity": "P1" if change.state == "incident" else ("P3" if change.state == "alert" else "closed"),
        }
        emitted = emit_event(
            event=STORM_EVENTS[change.state],
            resource={
                "prefect.resource.id": f"releasegate.queue.{config.pool_name}.{q.name}",
                "prefect.resource.name": f"queue {q.name}",
                "releasegate.deployment": f"queue {q.name} ({change.count} runs)",
            },
            payload=payload,
        )
        opened_by = last[0].details.get("storm_incident") or last[0].decision_id if current is not None else None
        rec = log.append(
            records.incident(
                decision_outcome=DecisionOutcome.reject if change.state != "closed" else DecisionOutcome.accept,
                decision_rationale=change.explanation(recommended, config.pool_concurrency_limit),
                subject=subject,
                actor="releasegate:deferral-sweeper",
                details={
                    **payload,
                    "incident_for": f"queue:{q.name}",
                    "incident_kind": "deferral_storm",
                    "storm_incident": opened_by,
                    "event": STORM_EVENTS[change.state],
                    "event_id": str(emitted.id) if emitted else None,
                },
            ),
            now=now,
        )
        if change.state != "closed":
            out[q.name] = {
                "decision_id": opened_by or rec.decision_id,
                "event_id": str(emitted.id) if emitted else None,
                "changed": True,
                "queue": q.name,
                "state": change.state,
                "record": rec.decision_id,
                "open_deferrals": change.count,
                "waited_minutes": change.waited_minutes,
                "predicted_drain_at": payload["predicted_drain_at"],
            }
        else:
            out[f"{q.name}:closed"] = {"changed": True, "queue": q.name, "state": "closed", "record": rec.decision_id}
    return out

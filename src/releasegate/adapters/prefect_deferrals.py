"""Deferral operations on Prefect: the sweeper's escalations, audited overrides, the KPI report."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import httpx
from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.states import Scheduled
from sqlalchemy.exc import SQLAlchemyError

from releasegate import records
from releasegate.adapters.prefect_backlog import escalate_storms, record_cap_waits, sweeper_record
from releasegate.adapters.prefect_gate import (
    DEFERRED,
    build_snapshot,
    expected_durations,
    run_queue,
)
from releasegate.adapters.prefect_query import read_all_flow_runs
from releasegate.app import App
from releasegate.decisions import DecisionOutcome, DecisionRefused
from releasegate.errors import Refused
from releasegate.policy.capacity import GatewayConfig, RunRequest
from releasegate.policy.deferrals import (
    SLA_EVENTS,
    WAKEABLE,
    SlaState,
    escalations_due,
    runs_to_wake,
    sla_state,
)
from releasegate.policy.kpis import KpiReport, deferral_minutes, percentile
from releasegate.policy.runtime_policy import check_deployments, load_prefect_yaml
from releasegate.store.scheduling_store import Deferral

_logger = logging.getLogger(__name__)
FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}


@dataclass
class SweepReport:
    open_deferrals: int = 0
    closed: list[str] = field(default_factory=list)
    escalations: list[dict] = field(default_factory=list)
    woken: list[str] = field(default_factory=list)
    cap_waits: list[dict] = field(default_factory=list)  # runs found waiting behind a cap, recorded now
    storms: list[dict] = field(default_factory=list)  # queue incidents opened, escalated or closed now


# A run due within this margin is left to its worker: waking it gains little, and only a run whose
# scheduled time lies beyond every worker's prefetch cannot be picked up while its state is moved.
WAKE_MARGIN = timedelta(minutes=1)


def sweep(app: App, config: GatewayConfig) -> SweepReport:
    """Escalate deferrals past their SLA (once per level), close those whose run has ended, and wake the
    capacity deferrals the gateway would admit now (``policy.deferrals.runs_to_wake``)."""
    store, log = app.store, app.log
    now = app.clock.now()
    report = SweepReport()
    waiting: list[tuple[Deferral, FlowRun]] = []
    by_queue: dict[str, list[Deferral]] = {}
    due_levels: list[tuple[Deferral, str, list[SlaState]]] = []
    with get_client(sync_client=True) as client:
        report.cap_waits = record_cap_waits(app, client, config, now)
        for d in store.deferrals("open"):
            try:
                run = client.read_flow_run(d.flow_run_id)  # type: ignore[arg-type]  # the id's str form serves
            except ObjectNotFound:
                store.close_deferral(d.flow_run_id, "gone", now)
                report.closed.append(d.flow_run_id)
                continue
            if run.state_type in FINAL:
                # A run being re-evaluated (Pending/Running) is left alone: the gate closes or extends it.
                store.close_deferral(d.flow_run_id, f"ended:{run.state_type.value.lower()}", now)
                report.closed.append(d.flow_run_id)
                continue
            report.open_deferrals += 1
            if (
                d.reason_code in WAKEABLE
                and d.next_evaluation_at > now + WAKE_MARGIN
                and run.state_type == StateType.SCHEDULED
                and run.state_name == DEFERRED
            ):
                waiting.append((d, run))
            current = sla_state(d.first_deferred_at, now, config.sla_alert_minutes, config.sla_incident_minutes)
            queue = run_queue(config, d.deployment, run.work_queue_name)
            by_queue.setdefault(queue, []).append(d)
            due_levels.append((d, queue, escalations_due(current, SlaState(d.sla_state))))
            if current.value != d.sla_state:
                store.set_sla_state(d.flow_run_id, current.value)
        # One incident per queue while any of its deferrals is past the SLA, not one per run (a backfill
        # storm defers hundreds of runs): the storm's event notifies; each run's escalation is recorded.
        storms = escalate_storms(app, config, by_queue, now)
        report.storms = [s for s in storms.values() if s.get("changed")]
        for d, queue, levels in due_levels:
            storm = storms.get(queue, {})
            for level in levels:
                waited = int((now - d.first_deferred_at) / timedelta(minutes=1))
                rec = log.append(
                    sweeper_record(
                        d,
                        DecisionOutcome.reject,
                        f"deferral SLA {level.value}: {d.deployment} run deferred for {waited} min ({d.reason_code})",
                        sla_escalation=level.value,
                        event=SLA_EVENTS[level.value],
                        storm_incident=storm.get("decision_id"),
                        event_id=storm.get("event_id"),
                    ),
                    now=now,
                )
                report.escalations.append(
                    {
                        "flow_run_id": d.flow_run_id,
                        "level": level.value,
                        "event": SLA_EVENTS[level.value],
                        "decision_id": rec.decision_id,
                        "waited_minutes": waited,
                        "storm_incident": storm.get("decision_id"),
                        "deployment": d.deployment,
                        "reason_code": d.reason_code,
                        "next_evaluation_at": d.next_evaluation_at.isoformat(),
                    }
                )
        if waiting:
            report.woken = _wake(app, client, config, waiting, now)
    return report


WOKEN = "Woken"  # the state name of a woken run: not "Scheduled", so Prefect's late-runs service leaves it
# (and its message) alone; a worker takes any Scheduled-type run whatever its name


def _wake(app: App, client, config: GatewayConfig, waiting: list[tuple[Deferral, FlowRun]], now: datetime) -> list[str]:
    """Wake the deferred runs the gateway would admit now (``runs_to_wake``: queue priority first, then the
    oldest deferral): each goes back to Prefect's queue at its first deferral time, so it keeps its place
    ahead of younger runs, and only then is the wake recorded. The gateway decides again when a worker
    starts it. A run that cannot be moved is logged and left deferred; the others are still woken."""
    store, log, clock = app.store, app.log, app.clock
    lowest = max(config.queues, key=lambda q: q.priority).name
    reserving = config.admission == "reservation"
    ids = {str(run.deployment_id): d.deployment for d, run in waiting if run.deployment_id}
    durations = expected_durations(app, client, ids) if reserving else {}
    requests = []
    for d, run in waiting:
        requests.append(
            RunRequest(
                flow_run_id=d.flow_run_id,
                deployment=d.deployment,
                queue=run_queue(config, d.deployment, run.work_queue_name),
                attempts=d.attempts,
                expected_seconds=durations.get(str(run.deployment_id)) if run.deployment_id else None,
            )
        )
    # one snapshot for all: asked as the lowest queue, it holds every run that out-ranks any of them
    # (deferred higher-priority runs included, as reservations at their next evaluation)
    probe = RunRequest(flow_run_id="", deployment="", queue=lowest)
    snapshot = build_snapshot(app, client, config, None, probe, now, durations)
    by_id = {d.flow_run_id: (d, run) for d, run in waiting}
    woken = []
    for request in runs_to_wake(requests, snapshot, config, now):
        d, seen = by_id[request.flow_run_id]
        try:
            moved = _move_woken(client, d, seen, clock.now())
        except (ObjectNotFound, PrefectHTTPStatusError, httpx.HTTPError) as exc:
            _logger.warning("deferral sweeper: could not wake %s (%s): left deferred", d.flow_run_id, exc)
            continue
        if not moved:
            continue
        try:
            log.append(
                sweeper_record(
                    d,
                    DecisionOutcome.accept,
                    f"woken early: the gateway would admit this {d.deployment} run now "
                    f"({d.reason_code} cleared before {d.next_evaluation_at.isoformat()})",
                    woken_at=now.isoformat(),
                ),
                now=now,
            )
            store.wake_deferral(d.flow_run_id, now)
        except SQLAlchemyError as exc:  # the run is woken: the gateway records its admission or deferral
            _logger.error("deferral sweeper: woke %s but could not record it: %s", d.flow_run_id, exc)
        woken.append(d.flow_run_id)
    return woken


def _move_woken(client, d: Deferral, seen: FlowRun, now: datetime) -> bool:
    """Move one deferred run back to Prefect's queue, if it is still in the very deferral the sweep read
    (``seen``) and not about to start.

    Prefect's state API has no compare-and-set, and the server accepts a move to Scheduled from any state
    (Pending, Running, even Cancelled or Failed). So: the run is read again just before the move and must
    still be in the state the sweep read (same state id, a capacity deferral); a run more than
    ``WAKE_MARGIN`` from its planned evaluation is beyond every worker's prefetch
    (``PREFECT_WORKER_PREFETCH_SECONDS``, 10 s by default), so no worker takes it in between; and after the
    move the run's state history is read: if another state came in between the read and the move (an
    operator's cancel, say), that state is put back and the run is not woken. The remaining window is the
    few milliseconds between that check and the restore."""
    run = client.read_flow_run(d.flow_run_id)
    if run.state_id != seen.state_id:
        return False  # moved, re-deferred or changed since the sweep read (and vetted) that Deferred state
    planned = run.next_scheduled_start_time
    if planned is None or planned <= now + WAKE_MARGIN:
        return False  # due anyway: its worker takes it
    place = min(d.first_deferred_at, now)
    state: State[Any] = Scheduled(name=WOKEN, scheduled_time=place, message=f"WOKEN {d.reason_code}")
    result = client.set_flow_run_state(d.flow_run_id, state)
    if result.status != SetStateStatus.ACCEPT:
        _logger.info("deferral sweeper: Prefect did not accept waking %s: %s", d.flow_run_id, result.details)
        return False
    history = sorted(client.read_flow_run_states(d.flow_run_id), key=lambda st: st.timestamp)
    ids = [st.id for st in history]
    mine = result.state.id if result.state is not None else None
    at = ids.index(mine) if mine in ids else -1
    if at > 0 and ids[at - 1] != seen.state_id:
        between = history[at - 1]
        client.set_flow_run_state(d.flow_run_id, between.fresh_copy(), force=True)
        _logger.warning(
            "deferral sweeper: %s moved to %s while being woken: put back, not woken", d.flow_run_id, between.name
        )
        return False
    return True


class OverrideRefused(Refused):
    """Also carries the id of the refusal record written for it (None when nothing was recorded)."""

    what = "override refused"

    def __init__(self, field: str, rule: str, decision_id: str | None):
        super().__init__(field, rule)
        self.decision_id = decision_id


def override_deferral(
    app: App,
    flow_run_id: str,
    ticket: str | None,
    by: str,
    reason: str,
    expires_in: timedelta,
    key_file: Path | None = None,
):
    """Start a deferred run now. Needs a ticket and a grant signed by someone on the ``overrides``
    allow-list with their pinned key (``policy.grants``); recorded as an ``override`` decision before
    anything moves."""
    store, log = app.store, app.log
    now = app.clock.now()

    def refuse(field: str, rule: str) -> NoReturn:
        rec = log.append(
            records.override(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"override refused: {field}: {rule}",
                subject=records.flow_run_subject(flow_run_id),
                actor=by or "<missing>",
                details={"ticket_ref": ticket, "reason": reason, "refusal": f"{field}: {rule}"},
            ),
            now=now,
        )
        raise OverrideRefused(field, rule, rec.decision_id)

    if not (ticket or "").strip():
        refuse("ticket", "an override needs a ticket (--ticket)")
    if not (by or "").strip():
        refuse("by", "an override needs the name of who grants it (--by)")
    if not (reason or "").strip():
        refuse("reason", "an override needs a reason (--reason)")
    deferral = store.get_deferral(flow_run_id)
    if deferral is None or deferral.status != "open":
        refuse("run", f"no open deferral for flow run {flow_run_id} (see `releasegate deferrals`)")
    expiry = (now + expires_in).replace(microsecond=0)
    signed = _sign_override(flow_run_id, str(ticket), by, reason, expiry, now, key_file, app, refuse)
    try:
        rec = log.append(
            records.override(
                decision_outcome=DecisionOutcome.override,
                decision_rationale=f"deferral overridden by {by}: {reason}",
                subject=records.flow_run_subject(flow_run_id),
                actor=by,
                exception_expiry=expiry,
                details={
                    "ticket_ref": ticket,
                    "deployment": deferral.deployment,
                    "deferral_reason_code": deferral.reason_code,
                    "deferred_since": deferral.first_deferred_at.isoformat(),
                    "reason": reason,
                    **signed,
                },
            ),
            now=now,
        )
    except DecisionRefused as exc:
        refuse(exc.field, exc.rule)
    store.close_deferral(flow_run_id, "overridden", now)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Scheduled(scheduled_time=now, message=f"OVERRIDE {ticket}"), force=True)
    return rec


def _sign_override(run_id, ticket, by, reason, expiry, now, key_file, app, refuse) -> dict:
    from releasegate.policy.grants import GrantRefused, GrantStatement
    from releasegate.services.grants import signed_grant
    from releasegate.store.keys import KeyRefused

    statement = GrantStatement(
        kind="deferral_override",
        subject=records.flow_run_subject(run_id),
        granted_by=by,
        ticket_ref=ticket,
        expires_at=expiry,
        terms={"reason": reason},
        signed_at=now,
    )
    try:
        return signed_grant(statement, key_file, "overrides", app=app)
    except (KeyRefused, GrantRefused) as exc:
        refuse(exc.field, exc.rule)  # records the refusal and raises OverrideRefused
        raise


def kpi_report(app: App, config: GatewayConfig, since: datetime, publish: bool = True) -> KpiReport:
    now = app.clock.now()
    with get_client(sync_client=True) as client:
        runs = read_all_flow_runs(
            client,
            flow_run_filter=FlowRunFilter(
                expected_start_time=FlowRunFilterExpectedStartTime(after_=since, before_=now)
            ),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[config.pool_name])),
        )
    scheduled = [r for r in runs if r.deployment_id is not None]
    started = [
        r for r in scheduled if r.start_time is not None or r.state_type in (StateType.RUNNING, StateType.COMPLETED)
    ]
    ok, bad = check_deployments(load_prefect_yaml(app.project_root / "prefect.yaml"))
    deferrals = app.store.deferrals(status=None, since=since)
    minutes = deferral_minutes([d.first_deferred_at for d in deferrals], [d.closed_at for d in deferrals], now)
    report = KpiReport(
        since=since,
        until=now,
        scheduled_runs=len(scheduled),
        started_runs=len(started),
        deployments=len(ok) + len(bad),
        deployments_with_policy=len(ok),
        deferrals=len(deferrals),
        deferral_minutes_p50=percentile(minutes, 50),
        deferral_minutes_p95=percentile(minutes, 95),
        deferral_minutes_max=max(minutes) if minutes else None,
        deferrals_over_sla=sum(1 for m in minutes if m > config.sla_alert_minutes),
        sla_minutes=config.sla_alert_minutes,
    )
    if publish:
        import warnings

        from prefect.artifacts import create_markdown_artifact

        # The report is an operator command, not a flow run: Prefect warns that artifacts outside a run
        # are deprecated, but they are still the place the UI shows them (Artifacts page, key below).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            create_markdown_artifact(markdown=report.markdown(), key="releasegate-kpis", description="releasegate KPIs")
    return report

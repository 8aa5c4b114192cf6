"""Crashed runs on the releasegate pool: retried under their runtime policy (``policy.crash_retry``).

A worker or machine that dies takes its flow runs' processes with it. Prefect's zombie automation
(``releasegate-crash-zombie-flow-runs`` in ``deployments/automations.yaml``, applied by ``releasegate
infra up``) marks such a run ``Crashed`` once its heartbeats stop; from then on the capacity gateway no
longer counts it (it reads Pending and Running runs only) and its admission slots' lease has run out.
``retry_crashed_runs`` (called by the ``deferral-sweeper`` every minute) then gives each crashed run of
a deployment what its runtime policy allows: rescheduled as ``AwaitingRetry`` after ``retry_delay_seconds``
while a retry is left (the run's own ``empirical_policy``, which ``governed_flow`` sets from the policy),
else left ``Crashed``. Each verdict is a ``schedule`` decision record (rule ``crash_retry``), written once
per crash: the run's label ``releasegate.crash`` remembers the crashes already handled. A retried
backfill resumes at the first date not done (``services.backfill``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.states import AwaitingRetry, Scheduled

from releasegate import records
from releasegate.adapters.prefect_gate import governing_name
from releasegate.adapters.prefect_query import read_all_flow_runs
from releasegate.app import App
from releasegate.decisions import DecisionOutcome
from releasegate.policy.capacity import GatewayConfig
from releasegate.policy.crash_retry import CrashVerdict, crash_verdict
from releasegate.store.trust import SealedDecisionLog

LABEL = "releasegate.crash"  # "<crashes handled>:<action>"


@dataclass
class CrashHandled:
    flow_run_id: str
    deployment: str | None
    action: str  # retry | give_up | too_old | restored | refused
    crashes: int
    detail: str


def retry_crashed_runs(app: App, config: GatewayConfig, now: datetime | None = None) -> list[CrashHandled]:
    """Handle each crashed run of the pool once per crash: retry it (``AwaitingRetry``) while its runtime
    policy allows, else leave it ``Crashed``; record each verdict."""
    now = now or app.clock.now()
    handled: list[CrashHandled] = []
    with get_client(sync_client=True) as c:
        runs: list[FlowRun] = read_all_flow_runs(
            c,
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED]))
            ),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[config.pool_name])),
        )
        names: dict[str, str] = {}
        for run in runs:
            if run.deployment_id is None:  # Prefect reschedules only a deployment's runs
                continue
            states = sorted(c.read_flow_run_states(run.id), key=lambda st: st.timestamp)
            marks = [k for k, st in enumerate(states) if st.type == StateType.CRASHED]
            if not marks or str((run.labels or {}).get(LABEL, "")).split(":")[0] == str(len(marks)):
                continue  # this crash was handled by an earlier sweep
            key = str(run.deployment_id)
            if key not in names:
                names[key] = governing_name(c.read_deployment(run.deployment_id))
            before = states[marks[-1] - 1] if marks[-1] > 0 else None
            if before is not None and before.type == StateType.SCHEDULED:
                # The zombie automation met a heartbeat sent just as the run was deferred: it was not
                # running, so nothing crashed. Put it back as it was; no retry is spent.
                handled.append(_restore(app.log, c, run, before, names[key], len(marks), now))
                continue
            crashes = sum(1 for k in marks if k == 0 or states[k - 1].type != StateType.SCHEDULED)
            policy = run.empirical_policy
            delay = policy.retry_delay if isinstance(policy.retry_delay, int | float) else None
            verdict = crash_verdict(crashes, policy.retries, delay, states[marks[-1]].timestamp or now, now)
            action: str = verdict.action
            detail = verdict.reason
            if verdict.at is not None:
                message = f"releasegate: {verdict.reason}"
                retry: Any = AwaitingRetry(scheduled_time=verdict.at, message=message)
                result = c.set_flow_run_state(run.id, retry)
                if result.status.value != "ACCEPT":
                    action = "refused"
                    detail = f"Prefect refused the retry ({result.status.value}): {result.details}"
            c.update_flow_run_labels(run.id, {LABEL: f"{len(marks)}:{action}"})
            crash_message = states[marks[-1]].message or ""
            _record(app.log, str(run.id), names[key], verdict, action, detail, crash_message, now)
            handled.append(CrashHandled(str(run.id), names[key], action, crashes, detail))
    return handled


def _record(
    log: SealedDecisionLog,
    run_id: str,
    deployment: str,
    verdict: CrashVerdict,
    action: str,
    detail: str,
    crash_message: str,
    now: datetime,
) -> None:
    _crash_record(
        log,
        run_id,
        deployment,
        action == "retry",
        detail,
        now,
        action="move" if action == "retry" else "skip",
        crash_action=action,
        crashes=verdict.crashes,
        retries=verdict.retries,
        moved_to=verdict.at.isoformat() if action == "retry" and verdict.at else None,
        crash_message=(crash_message or "")[:500],
    )


def _crash_record(
    log: SealedDecisionLog, run_id: str, deployment: str, accepted: bool, detail: str, now: datetime, **details: Any
) -> None:
    """The sweeper's ``schedule`` decision (rule ``crash_retry``) about one crashed run: its fields, then
    ``details``."""
    log.append(
        records.schedule(
            decision_outcome=DecisionOutcome.accept if accepted else DecisionOutcome.reject,
            decision_rationale=f"{deployment}: {detail}",
            subject=records.flow_run_subject(run_id),
            actor="releasegate:deferral-sweeper",
            details={"deployment": deployment, "rule": "crash_retry", **details},
        ),
        now=now,
    )


def _restore(
    log: SealedDecisionLog, c, run: FlowRun, before, deployment: str, marks: int, now: datetime
) -> CrashHandled:
    due = before.state_details.scheduled_time
    due = max(due, now) if due is not None else now
    detail = (
        f"marked Crashed while it was {before.name} (not running): put back as {before.name} due "
        f"{due.isoformat()}, no retry spent"
    )
    result = c.set_flow_run_state(
        run.id, Scheduled(scheduled_time=due, name=before.name, message=before.message or detail)
    )
    action = "restored" if result.status.value == "ACCEPT" else "refused"
    if action == "refused":
        detail = f"Prefect refused to put it back ({result.status.value}): {result.details}"
    c.update_flow_run_labels(run.id, {LABEL: f"{marks}:{action}"})
    _crash_record(
        log,
        str(run.id),
        deployment,
        action == "restored",
        detail,
        now,
        action="move",
        crash_action=action,
        moved_to=due.isoformat(),
    )
    return CrashHandled(str(run.id), deployment, action, 0, detail)

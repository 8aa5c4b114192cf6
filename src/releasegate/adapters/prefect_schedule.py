"""The schedule rules (``policy.schedule_rules``) applied to a starting Prefect run.

Called by ``governed_flow`` after the late-run rule and before the capacity gateway. The run's own
``expected_start_time`` (Prefect keeps the first schedule there when a run is rescheduled) says which
cron occurrence it stands for:

* DST ``skip`` — the run ends Cancelled (``DST_SKIPPED``) with a ``schedule`` decision;
* DST ``move`` — the run puts itself back to ``Scheduled`` at the rule's time (the gateway's in-place
  deferral: ``Pause``) with a ``schedule`` decision, and runs when it comes back;
* one run per occurrence — the first run of an occurrence claims its key in the scheduling store (the
  unique constraint decides a race); any other run of the same occurrence ends Cancelled
  (``DUPLICATE_OCCURRENCE``);
* catch-up — a scheduled run with later scheduled runs of its deployment already due is skipped per
  ``catch_up`` (``CATCH_UP_SKIPPED``).

A run of a Prefect deployment named otherwise than the governed one (``eod-scoring/<model>``, made from
``eod-scoring`` per model) follows its own deployment's cron schedules, and its occurrences are its own
(keyed ``eod-scoring/<model>``): two models scheduled at the same minute are two occurrences.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from prefect import get_client, get_run_logger
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import FlowRun, State
from prefect.exceptions import Pause
from prefect.states import Cancelled, Scheduled

from releasegate import records
from releasegate.adapters.prefect_query import read_all_flow_runs
from releasegate.app import App
from releasegate.decisions import DecisionOutcome
from releasegate.policy.runtime_policy import RuntimePolicy
from releasegate.policy.schedule_rules import (
    CatchUpMode,
    ScheduleVerdict,
    catch_up_verdict,
    dst_verdict,
    occurrence_of,
)
from releasegate.store.trust import SealedDecisionLog

MOVED = "Deferred"  # the same state name as a gateway deferral: the run waits in Scheduled


def _record(
    log: SealedDecisionLog,
    deployment: str,
    run_id: str,
    rule: str,
    verdict: ScheduleVerdict,
    now: datetime,
    **extra: Any,
) -> None:
    occ = verdict.occurrence
    log.append(
        records.schedule(
            decision_outcome=DecisionOutcome.reject if verdict.action == "skip" else DecisionOutcome.accept,
            decision_rationale=verdict.reason,
            subject=records.flow_run_subject(run_id),
            actor=f"releasegate:{deployment}",
            details={
                "deployment": deployment,
                "rule": rule,
                "action": verdict.action,
                "occurrence": occ.key if occ else None,
                "moved_to": verdict.at.isoformat() if verdict.at else None,
                **extra,
            },
        ),
        now=now,
    )


def is_schedule_run(run: FlowRun) -> bool:
    """Made by a deployment's schedule: Prefect's scheduler marks them ``auto_scheduled`` and gives them
    the idempotency key ``scheduled <deployment id> ...``."""
    return bool(run.auto_scheduled) or (run.idempotency_key or "").startswith("scheduled ")


def later_due(client: Any, run: FlowRun, now: datetime, crons: list[tuple[str, str]]) -> int:
    """How many later occurrences of the run's deployment already have a scheduled run due (any state);
    a second run of the run's own occurrence (a DST repeat) is not a later one."""
    if run.deployment_id is None or run.expected_start_time is None:
        return 0

    def occurrence(r: FlowRun) -> str:
        for cron, tz in crons:
            occ = occurrence_of(cron, tz, r.expected_start_time) if r.expected_start_time else None
            if occ is not None:
                return occ.key
        return str(r.id)

    others = read_all_flow_runs(
        client,
        flow_run_filter=FlowRunFilter(
            expected_start_time=FlowRunFilterExpectedStartTime(
                after_=run.expected_start_time + timedelta(seconds=1), before_=now
            ),
            id=FlowRunFilterId(not_any_=[run.id]),
        ),
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[run.deployment_id])),
    )
    mine = occurrence(run)
    return len({occurrence(r) for r in others if is_schedule_run(r)} - {mine})


def own_schedule(client: Any, run: FlowRun, deployment: str, crons: list[tuple[str, str]]):
    """(occurrence key prefix, cron schedules) of the run: the governed deployment's, or for a run of a
    deployment made from it under another name (``eod-scoring/<model>``) that deployment's own."""
    if run.deployment_id is None:
        return deployment, crons
    dep = client.read_deployment(run.deployment_id)
    if dep.name == deployment:
        return deployment, crons
    own = []
    for s in dep.schedules or []:
        cron = getattr(s.schedule, "cron", None)
        if cron:
            own.append((str(cron), str(getattr(s.schedule, "timezone", None) or "UTC")))
    return f"{deployment}/{dep.name}", own


def apply_schedule_rules(
    app: App, deployment: str, policy: RuntimePolicy, crons: list[tuple[str, str]]
) -> State | None:
    """``None``: the run goes on. A ``Cancelled`` state: end the run with it. A move does not return."""
    from prefect.runtime import flow_run

    from releasegate.policy.eod_deployments import GOVERNED_BY

    # a run of a deployment made from this one (its tags, copied to the run) has schedules of its own
    derived = any(str(t).startswith(GOVERNED_BY) for t in flow_run.tags or [])
    if not crons and policy.catch_up.mode is CatchUpMode.run_all and not derived:
        return None  # no rule can apply: spare every run start a read of its flow run

    run_id = str(flow_run.id)
    now = app.clock.now()
    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run.id)
        expected = run.expected_start_time
        if expected is not None and is_schedule_run(run):
            key, crons = own_schedule(client, run, deployment, crons)
            for cron, tz in crons:
                verdict = dst_verdict(cron, tz, policy.dst, expected, now)
                occ = verdict.occurrence
                if occ is None:
                    continue
                if verdict.action == "skip":
                    _record(app.log, deployment, run_id, "dst", verdict, now, dst=policy.dst.value)
                    logger.warning(verdict.reason)
                    return Cancelled(message=verdict.reason)
                if verdict.action == "move":
                    assert verdict.at is not None
                    _record(app.log, deployment, run_id, "dst", verdict, now, dst=policy.dst.value)
                    state: State[Any] = Scheduled(name=MOVED, scheduled_time=verdict.at, message="DST_MOVED")
                    client.set_flow_run_state(flow_run.id, state, force=True)
                    logger.warning(verdict.reason)
                    raise Pause(state=state)
                store = app.store
                mine = hashlib.sha256(run_id.encode()).hexdigest()
                claim = store.claim(key, occ.key, mine, run_id, "schedule_occurrence", now)
                if claim.new:
                    store.set_flow_run(key, occ.key, run_id)
                elif claim.payload_sha256 != mine:
                    dup = ScheduleVerdict(
                        action="skip",
                        occurrence=occ,
                        reason=f"DUPLICATE_OCCURRENCE: {occ.key} already ran as flow run {claim.flow_run_id}",
                    )
                    _record(app.log, deployment, run_id, "duplicate_occurrence", dup, now, first_run=claim.flow_run_id)
                    logger.warning(dup.reason)
                    return Cancelled(message=dup.reason)
                break
        if policy.catch_up.mode is not CatchUpMode.run_all and is_schedule_run(run):
            due = later_due(client, run, now, crons)
            verdict = catch_up_verdict(policy.catch_up, due)
            if verdict.action == "skip":
                _record(
                    app.log,
                    deployment,
                    run_id,
                    "catch_up",
                    verdict,
                    now,
                    later_due=due,
                    catch_up=policy.catch_up.mode.value,
                )
                logger.warning(verdict.reason)
                return Cancelled(message=verdict.reason)
    return None

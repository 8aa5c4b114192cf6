"""The capacity gateway wired to Prefect: read the pool, decide, defer the run in place.

``gate_current_run`` is what every gated flow calls first. It builds a ``CapacitySnapshot`` from the
Prefect API, asks ``releasegate.policy.capacity.evaluate``, and when the run may not start:

1. opens (or extends) the run's deferral, keeping the first deferral time for the SLA;
2. writes a ``deferral`` decision record;
3. sets the run's own state to ``Scheduled(name="Deferred", scheduled_time=next_evaluation_at,
   message=<reason code>)`` with ``force=True``;
4. raises Prefect's ``Pause`` signal: the engine keeps that state and the process exits 0, so a worker
   (or ``flow.serve``) picks the run up again at ``next_evaluation_at`` and the gateway is asked again.

Step 4 uses an internal Prefect signal (``prefect.exceptions.Pause``), the same one
``pause_flow_run(reschedule=True)`` uses; the pin ``prefect<3.9`` and the harness tests guard it.
An admitted run then takes leased slots of the pool's and its queue's Prefect concurrency limits
(``prefect_slots``): granted atomically by the server, so two workers never both take the last slot.
An overridden deferral (``releasegate deferrals override``) is admitted once without asking the gateway,
while its ``exception_expiry`` holds (``use_override``); it takes no slot (the override is the exception).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from prefect import get_client, get_run_logger
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
    WorkQueueFilter,
    WorkQueueFilterName,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import Pause
from prefect.states import Scheduled

from releasegate import records
from releasegate.adapters import prefect_slots
from releasegate.adapters.config import load_gateway_config
from releasegate.adapters.prefect_query import read_all_flow_runs
from releasegate.app import App
from releasegate.decisions import DecisionOutcome
from releasegate.policy.capacity import (
    ActiveRun,
    Admitted,
    CapacitySnapshot,
    DeferralReason,
    GateDecision,
    GatewayConfig,
    RunRequest,
    evaluate,
    expected_duration,
    slots_taken,
)
from releasegate.policy.deferrals import WAKEABLE

DEFERRED = "Deferred"


def deployment_names(client, runs: list[FlowRun]) -> dict[str, str]:
    ids = list({r.deployment_id for r in runs if r.deployment_id})
    if not ids:
        return {}
    deps = client.read_deployments(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=ids)))
    return {str(d.id): governing_name(d) for d in deps}


def governing_name(dep: Any) -> str:
    """The capacity policy's name for a Prefect deployment: its own, or for one made from a governed
    deployment (``eod-scoring/<model>``, tagged ``governed-by:eod-scoring``) the governed one's."""
    from releasegate.policy.eod_deployments import GOVERNED_BY

    tagged = [t.removeprefix(GOVERNED_BY) for t in dep.tags or [] if t.startswith(GOVERNED_BY)]
    return tagged[0] if tagged else dep.name


def _as_active(
    run: FlowRun,
    names: dict[str, str],
    state: str,
    durations: dict[str, float | None] | None = None,
    now: datetime | None = None,
) -> ActiveRun:
    """A Prefect run as the policy sees it; a ``starting`` run (at the gateway) is due ``now``."""
    name = names.get(str(run.deployment_id)) if run.deployment_id else None
    expected = (durations or {}).get(str(run.deployment_id)) if run.deployment_id else None
    started = run.start_time if state == "running" else None
    start: datetime | None = run.expected_start_time
    if state == "starting":
        start = now
    elif state == "scheduled" and _deferred(run):  # its reservation: its next evaluation (Prefect keeps the
        start = run.next_scheduled_start_time  # first expected start); the sweeper may wake it sooner
    return ActiveRun(
        flow_run_id=str(run.id),
        deployment=name,
        queue=run.work_queue_name,
        state=state,
        expected_start=start,
        expected_end=started + timedelta(seconds=expected) if started and expected is not None else None,
        expected_seconds=expected if state in ("scheduled", "starting") else None,
    )


def _deferred(run: FlowRun) -> bool:
    return (run.state_name or "") == DEFERRED


# a deferred higher-priority run waiting for an upstream has no start time a reservation could plan on
_UNPLANNED = {DeferralReason.UPSTREAM_NOT_READY.value}


def _upcoming(run: FlowRun, reserving: bool, horizon: datetime) -> bool:
    """Whether a scheduled higher-priority run counts as upcoming. The priority-window rule ignores deferred
    runs (a run held back must not hold others back in turn). The reservation rule keeps a deferred run's
    reservation at its next evaluation, when that lies within the horizon and is a known time (capacity,
    freeze, maintenance); the simulation does the same (``tools.simulate``)."""
    if not _deferred(run):
        return True
    if not reserving or run.state is None or (run.state.message or "") in _UNPLANNED:
        return False
    nxt = run.next_scheduled_start_time
    return nxt is not None and nxt <= horizon


def _paused_queues(client, pool: str) -> set[str]:
    """The pool's work queues an operator paused (``prefect work-queue pause``): Prefect offers their
    scheduled runs to no worker, so such a run would otherwise reserve its slots for as long as the
    pause lasts. A queue merely without a polling worker is kept: a worker may come back any moment."""
    from prefect.exceptions import ObjectNotFound

    try:
        return {q.name for q in client.read_work_queues(work_pool_name=pool) if q.is_paused}
    except ObjectNotFound:  # no such pool (yet): nothing is paused in it
        return set()


HISTORY = 50  # completed runs per deployment the duration estimate looks at


def expected_durations(
    app: App,
    client,
    deployment_ids: dict[str, str],
    known: dict[str, float | None] | None = None,
    percentile: float = 90.0,
    min_samples: int = 3,
) -> dict[str, float | None]:
    """Per deployment id (``deployment_ids``: id -> the policy's name for it): the conservative duration
    of its runs (``capacity.expected_duration``) from its last completed runs in Prefect, falling back to
    the runtime policy's ``timeout_seconds`` of its name in the project's prefect.yaml. Keyed by id, not
    name: every model's ``eod-scoring/<model>`` is ``eod-scoring`` to the policy, but each keeps its own
    durations. Prefect keeps every run's ``total_run_time``; nothing is stored by us. Ids already in
    ``known`` (read earlier in the same gate evaluation) are not read again. ``percentile`` and
    ``min_samples``: as ``expected_duration``'s (a start prediction wants the median, from one run)."""
    from releasegate.policy.runtime_policy import find_deployment, load_prefect_yaml, policy_from_deployment

    out: dict[str, float | None] = dict(known or {})
    todo = {dep_id: name for dep_id, name in deployment_ids.items() if dep_id not in out}
    if not todo:
        return out
    try:
        doc = load_prefect_yaml(app.project_root / "prefect.yaml")
    except (OSError, ValueError):
        doc = {}
    for dep_id, name in todo.items():
        done = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))
            ),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep_id])),
            sort=FlowRunSort.END_TIME_DESC,
            limit=HISTORY,
        )
        samples = [r.total_run_time.total_seconds() for r in done if r.total_run_time]
        try:
            fallback: float | None = float(policy_from_deployment(find_deployment(doc, name)).timeout_seconds)
        except (KeyError, ValueError):
            fallback = None
        out[dep_id] = expected_duration(samples, fallback, percentile, min_samples)
    return out


def build_snapshot(
    app: App,
    client,
    config: GatewayConfig,
    exclude: str | None,
    request: RunRequest,
    now: datetime,
    known_durations: dict[str, float | None] | None = None,
) -> CapacitySnapshot:
    pool = WorkPoolFilter(name=WorkPoolFilterName(any_=[config.pool_name]))
    active = read_all_flow_runs(
        client,
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))
        ),
        work_pool_filter=pool,
    )
    reserving = config.admission == "reservation"
    horizon = now + timedelta(
        minutes=config.reservation_horizon_minutes if reserving else config.priority_window_minutes
    )
    mine = config.queue(request.queue).priority
    higher = [q.name for q in config.queues if q.priority < mine]
    upcoming = []
    if higher:  # only runs that could out-rank this one matter; a flood of equals must not hide them
        upcoming = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                expected_start_time=FlowRunFilterExpectedStartTime(before_=horizon),
            ),
            work_pool_filter=pool,
            work_queue_filter=WorkQueueFilter(name=WorkQueueFilterName(any_=higher)),
            limit=200,
        )
    active = [r for r in active if str(r.id) != exclude]
    # two reads: a run that went from Pending (at the gate) to Deferred in between is counted once, active
    busy = {str(r.id) for r in active}
    upcoming = [
        r for r in upcoming if str(r.id) != exclude and str(r.id) not in busy and _upcoming(r, reserving, horizon)
    ]
    if upcoming:  # a paused queue's runs are not offered to any worker: they hold back nothing until resumed
        paused = _paused_queues(client, config.pool_name)
        upcoming = [r for r in upcoming if r.work_queue_name not in paused]
    names = deployment_names(client, active + upcoming)
    durations = expected_durations(app, client, names, known_durations) if reserving else None

    def starting(run: FlowRun) -> bool:  # a gated run not admitted yet: no slot, no capacity held
        gated = config.deployments.get(names.get(str(run.deployment_id), ""))
        return gated is not None and gated.gated and not prefect_slots.admitted(run)

    at_gate = [r for r in active if starting(r)]
    active = [r for r in active if not starting(r)]
    gate = config.deployments.get(request.deployment)
    completed = app.store.completed(gate.upstreams if gate else [], request.business_dates)
    return CapacitySnapshot(
        active=[
            _as_active(r, names, "running" if r.state_type == StateType.RUNNING else "pending", durations)
            for r in active
        ],
        upcoming=[_as_active(r, names, "scheduled", durations, now) for r in upcoming]
        + [_as_active(r, names, "starting", durations, now) for r in at_gate],
        completed=completed,
    )


def run_queue(config: GatewayConfig, deployment: str, work_queue_name: str | None) -> str:
    """The policy queue a run is judged in: its deployment's, else its own Prefect work queue when the
    policy knows it, else the lowest-priority queue."""
    gate = config.deployments.get(deployment)
    if gate is not None:
        return gate.queue
    if work_queue_name in {q.name for q in config.queues}:
        return str(work_queue_name)
    return max(config.queues, key=lambda q: q.priority).name


def use_override(app: App, run_id: str, now: datetime) -> str | None:
    """Admit on an override only if one holds now: sealed, granted for this run, unexpired, unused.

    An override admits one start of the run: its use is recorded (kind ``override``, naming the grant),
    and a retry or a later start goes through the gateway again. An override whose ``exception_expiry``
    has passed is recorded as expired and admits nothing."""
    log = app.log
    subject = f"flow_run:{run_id}"
    good, forged = log.trusted(kind="override", subject=subject)
    log.refuse_forged(forged, "capacity-gateway")
    used = {r.details.get("override_decision_id") for r in good if r.details.get("override_decision_id")}
    from releasegate.policy.grants import recorded_grant_problem
    from releasegate.services.approvers import governed_config

    keys = governed_config("capacity-gateway", app).keys
    grants = [
        r
        for r in good
        if r.decision_outcome is DecisionOutcome.override
        and r.decision_id not in used
        and r.exception_expiry
        # signed by the granter with the key pinned now, over this run, ticket and expiry
        and recorded_grant_problem(r.subject, r.actor, r.exception_expiry, r.details, keys) is None
    ]
    if not grants:
        return None
    grant = grants[-1]
    expiry = grant.exception_expiry
    assert expiry is not None  # grants without an expiry were left out above
    common = {"ticket_ref": grant.details.get("ticket_ref"), "override_decision_id": grant.decision_id}
    if expiry <= now:
        log.append(
            records.override(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"override {grant.decision_id} expired at {expiry.isoformat()}: "
                "the run goes through the capacity gateway",
                subject=subject,
                actor="releasegate:capacity-gateway",
                details={**common, "refusal": "exception_expiry: passed"},
            ),
            now=now,
        )
        return None
    log.append(
        records.override(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"override {grant.decision_id} used: run admitted once without the gateway",
            subject=subject,
            actor="releasegate:capacity-gateway",
            exception_expiry=grant.exception_expiry,
            details={**common, "used": True},
        ),
        now=now,
    )
    return grant.decision_id


def gate_current_run(
    app: App, deployment: str, business_dates: list[date] | None = None, config: GatewayConfig | None = None
) -> GateDecision:
    """Admit the current flow run or defer it (this function then does not return: see module doc)."""
    from prefect.runtime import flow_run

    config = config or load_gateway_config()
    store = app.store
    now = app.clock.now()
    run_id = str(flow_run.id)
    logger = get_run_logger()
    previous = store.get_deferral(run_id)
    grant = use_override(app, run_id, now)
    if grant is not None:
        logger.warning("deferral of %s overridden by ticket %s: admitted without the gateway", run_id, grant)
        prefect_slots.mark(run_id, prefect_slots.OVERRIDE)  # holds capacity, took no slot
        return Admitted(explanation=f"admitted by the audited override {grant}")

    gate = config.deployments.get(deployment)
    with get_client(sync_client=True) as client:
        queue = gate.queue if gate else None
        reserving = config.admission == "reservation"
        # the run's own record: its queue when the policy names none, its deployment's history to plan with
        own = client.read_flow_run(flow_run.id) if queue is None or reserving else None
        if queue is None:
            assert own is not None
            queue = run_queue(config, deployment, own.work_queue_name)
        own_id = str(own.deployment_id) if own is not None and own.deployment_id else None
        own_duration = expected_durations(app, client, {own_id: deployment}) if reserving and own_id else {}
        mine = own_duration.get(own_id) if own_id else None
        request = RunRequest(
            flow_run_id=run_id,
            deployment=deployment,
            queue=queue,
            business_dates=business_dates or [],
            attempts=previous.attempts if previous is not None and previous.status == "open" else 0,
            expected_seconds=mine,
        )
        snapshot = build_snapshot(app, client, config, run_id, request, now, own_duration)  # its duration: read once
        decision = evaluate(request, snapshot, config, now)
        if isinstance(decision, Admitted) and prefect_slots.in_scope():
            full = prefect_slots.take_slots(config, queue, run_id)  # atomic across workers: see prefect_slots
            if full is not None:
                pool_wide = full == prefect_slots.pool_limit(config)
                decision = slots_taken(request, config, now, full, pool_wide)
        if isinstance(decision, Admitted):
            if not prefect_slots.in_scope():  # a plain @flow: admitted from the snapshot only
                prefect_slots.mark(run_id, prefect_slots.UNLEASED)
            store.close_deferral(run_id, "admitted", now)
            logger.info("capacity gateway: %s", decision.explanation)
            return decision

        reason, next_at = decision.deferral_reason_code, decision.next_evaluation_at
        code = reason.value
        predicted = None
        if code in WAKEABLE:
            since = previous.first_deferred_at if previous is not None and previous.status == "open" else now
            # the predicted start is an estimate only, never a reason to fail the gate or change its
            # decision: when it cannot be computed (for any reason) the deferral is recorded as before,
            # without a prediction
            try:
                from releasegate.adapters.prefect_gate_prediction import predict_gate_start

                predicted = predict_gate_start(app, client, config, request, snapshot, since, now)
            except Exception:
                logger.warning("capacity gateway: no predicted start for %s", run_id, exc_info=True)
        deferral = store.record_deferral(
            run_id, deployment, code, next_at, decision.explanation, now, predicted_start_at=predicted
        )
        predicted_details = {"predicted_start_at": predicted.astimezone(UTC).isoformat()} if predicted else {}
        app.log.append(
            records.deferral(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=decision.explanation,
                subject=records.flow_run_subject(run_id),
                actor="releasegate:capacity-gateway",
                details={
                    "deployment": deployment,
                    "deferral_reason_code": code,
                    "next_evaluation_at": next_at.isoformat(),
                    "deferred_since": deferral.first_deferred_at.isoformat(),
                    "attempts": deferral.attempts,
                    "evidence": decision.evidence,
                    **predicted_details,
                },
            ),
            now=now,
        )
        state: State[Any] = Scheduled(name=DEFERRED, scheduled_time=next_at, message=code)
        client.set_flow_run_state(flow_run.id, state, force=True)
    logger.warning("deferred: %s; next evaluation at %s", decision.explanation, next_at.isoformat())
    raise Pause(state=state)


def record_completion(app: App, deployment: str, business_dates: list[date]) -> None:
    from prefect.runtime import flow_run

    now = app.clock.now()
    for d in business_dates:
        app.store.mark_completed(deployment, d, str(flow_run.id), now)

"""Event intake: validate the event contract, route it, start at most one run per key.

Guarantee: at most one run per ``deployment + idempotency_key``, and every run intake creates is
preceded by its accept decision in the log.

1. The envelope is validated (``EventEnvelope``); a refusal names the field and is recorded.
2. The route (configuration: event type → deployment and parameters) picks the deployment.
3. A local unique record (``event_intake``) is claimed. A duplicate whose run is known is answered
   at once, without calling Prefect or the log. A redelivery whose payload differs from the first under
   the same key is refused as a conflict and recorded.
4. The accept decision (kind ``event``, ``details.status = "accepted"``, with the parameters and the
   Prefect idempotency key) is appended *before* the run is created.
5. The run is created with Prefect's own ``idempotency_key``, prefixed with the deployment (Prefect's
   keys are unique per *flow*, not per deployment): the same key returns the same run.
6. A second, small event record (``details.status = "created"``, ``flow_run_id``,
   ``accepted_decision_id``) names the run; only then is the run id stored on the claim.

Crash safety: a claim without a run id means steps 4-6 did not all finish (a crash, or a delivery
racing the first one). Whoever finds such a claim completes them instead of answering "duplicate"
with nothing recorded: both records carry ids derived from ``deployment + idempotency_key``
(``uuid5``), and ``decision_id`` is unique in the log, so each is written exactly once however many
deliveries race or retry; Prefect's key makes ``create_run`` return the same run. The claim is kept
when ``create_run`` fails (its accept decision is already in the log): a redelivery retries the
creation under the same key. A claim that carries a run id therefore always has both records, and the
fast duplicate path stays one indexed read. The delivery that writes the "created" record answers
``created`` (and emits the Prefect event); every other one answers ``duplicate`` with the same run.

Every accepted or refused event is a decision record (kind ``event``); a duplicate is an answer, not a
new decision. An event whose type has routes but none whose ``match`` fits its payload is ``ignored``
(e.g. a version registered in staging by releasegate itself must not start a retrain): nothing was
decided, so it is counted, not recorded (``ignored_counts``; the webhook keeps each delivery's status,
``ignored``, and the registry watcher's run returns ``{"ignored": n}``). An event type with no route at
all is still a refusal: the routes lack one.

Why runs are created here and not by Prefect deployment triggers: a trigger's ``RunDeployment`` action
keys its run by the automation invocation, not by the event, and Prefect dedupes event ids only in a
5-minute window, so a redelivered event could start a second run. Intake creates the run with an
idempotency key and then emits the Prefect event (``releasegate.<event name>``) for automations and
the UI. Pure logic: the caller passes the store, the log, the run creator, the emitter and ``now``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from releasegate import records
from releasegate.decisions import DecisionOutcome, DecisionRecord, NewDecision, make_record
from releasegate.policy.manual_runs import describe_validation_error
from releasegate.policy.routes import DEFAULT_ROUTES as DEFAULT_ROUTES  # re-exported
from releasegate.policy.routes import Route as Route
from releasegate.policy.routes import render_parameters
from releasegate.policy.triggers import EventEnvelope, parse_event_type
from releasegate.store.decision_log import DecisionLog
from releasegate.store.scheduling_store import SchedulingStore

CreateRun = Callable[[str, dict[str, Any], str], str]  # (deployment, parameters, prefect_key) -> flow_run_id
Emit = Callable[[str, dict[str, Any]], None]  # (event name, payload)


def payload_digest(event_type: str, payload: dict[str, Any]) -> str:
    body = json.dumps({"event_type": event_type, "payload": payload}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def prefect_idempotency_key(deployment: str, key: str) -> str:
    return f"{deployment}:{key}"


_DECISION_IDS = uuid.UUID("6f1d1c52-3b8e-5a4e-9c57-2f7f0c1e8a10")  # namespace of intake's decision ids


def intake_decision_id(deployment: str, key: str, status: Literal["accepted", "created"]) -> str:
    """The id of the accept (or "created") record for ``deployment + key``: the same for every delivery."""
    return str(uuid.uuid5(_DECISION_IDS, f"event:{status}:{deployment}:{key}"))


def _append_once(
    log: DecisionLog, new: NewDecision, decision_id: str, now: datetime, look_first: bool
) -> tuple[DecisionRecord, bool]:
    """Append ``new`` under ``decision_id`` unless a record with that id exists; True if this call wrote it.

    ``look_first``: read before writing (a claim found without a run id, where the record may exist);
    a new claim writes at once, the unique ``decision_id`` still settles a race."""
    existing = log.get(decision_id) if look_first else None
    if existing is not None:
        return existing, False
    try:
        return log.append_record(make_record(new, now, decision_id=decision_id)).record, True
    except IntegrityError:  # a racing delivery wrote it first (decision_id is unique)
        existing = log.get(decision_id)
        if existing is None:
            raise
        return existing, False


_IGNORED: Counter[str] = Counter()
_IGNORED_LOCK = threading.Lock()


def _count_ignored(event_type: str) -> None:
    with _IGNORED_LOCK:
        _IGNORED[event_type] += 1


def ignored_counts() -> dict[str, int]:
    """Events this process ignored (a routed type, no route fitting the payload), per event type."""
    with _IGNORED_LOCK:
        return dict(_IGNORED)


@dataclass(frozen=True)
class IntakeResult:
    status: Literal["created", "duplicate", "refused", "ignored"]
    flow_run_id: str | None = None
    reason: str | None = None
    deployment: str | None = None
    decision_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None or k in ("status", "flow_run_id")}


def _refuse(
    log: DecisionLog, raw: dict[str, Any], reason: str, now: datetime, deployment: str | None = None, **extra: Any
) -> IntakeResult:
    def s(key: str) -> str:
        v = raw.get(key) if isinstance(raw, dict) else None
        return str(v) if v not in (None, "") else "<missing>"

    rec = log.append(
        records.event(
            decision_outcome=DecisionOutcome.reject,
            decision_rationale=f"event refused: {reason}",
            subject=records.deployment_subject(deployment) if deployment else records.event_subject(s("event_type")),
            actor=f"producer:{s('producer')}",
            details={
                "event_id": s("event_id"),
                "event_type": s("event_type"),
                "idempotency_key": s("idempotency_key"),
                "refusal": reason,
                **extra,
            },
        ),
        now=now,
    )
    return IntakeResult(status="refused", reason=reason, deployment=deployment, decision_id=rec.decision_id)


def intake_event(
    raw: dict[str, Any] | Any,
    *,
    routes: list[Route],
    store: SchedulingStore,
    log: DecisionLog,
    create_run: CreateRun,
    now: datetime,
    emit: Emit | None = None,
    ensure_deployment: Callable[[str], None] | None = None,
) -> IntakeResult:
    """``ensure_deployment(name)`` raises when the routed deployment does not exist where runs are
    created; it is asked before anything is claimed or recorded for a new key (never for a known
    duplicate, which is answered without calling Prefect), so a missing deployment leaves nothing behind."""
    if not isinstance(raw, dict):
        return _refuse(log, {}, f"an event must be a JSON object, got {type(raw).__name__}", now)
    try:
        event = EventEnvelope.model_validate(raw)
    except ValidationError as exc:
        return _refuse(log, raw, describe_validation_error(exc), now)

    typed = [r for r in routes if r.event_type == event.event_type]
    route = next((r for r in typed if r.fits(event)), None)
    if route is None and typed:
        _count_ignored(event.event_type)
        return IntakeResult(status="ignored", reason="no route matches the payload")
    if route is None:
        return _refuse(log, raw, f"event_type: no route for {event.event_type!r} (configure one)", now)
    deployment, key = route.deployment, event.idempotency_key
    digest = payload_digest(event.event_type, event.payload)

    # Fast path: one indexed read answers a known duplicate without calling Prefect.
    seen = store.lookup(deployment, key)
    if seen is None:
        if ensure_deployment is not None:
            ensure_deployment(deployment)
        seen = store.claim(deployment, key, digest, event.event_id, event.event_type, now)
    if seen.payload_sha256 != digest:
        return _refuse(
            log,
            raw,
            f"idempotency_key: {key!r} was first delivered with a different payload (conflicting redelivery)",
            now,
            deployment,
            first_payload_sha256=seen.payload_sha256,
            payload_sha256=digest,
        )
    if not seen.new and seen.flow_run_id:
        return IntakeResult(status="duplicate", flow_run_id=seen.flow_run_id, deployment=deployment)

    # New claim, or a claim without a run id (a crash before it was stored, or a racing delivery):
    # record the acceptance, then create the run, record it, store its id - each step at most once.
    parameters = render_parameters(route, event)
    prefect_key = prefect_idempotency_key(deployment, key)
    common = {"event_id": event.event_id, "event_type": event.event_type, "idempotency_key": key}
    accepted, _ = _append_once(
        log,
        records.event(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"{event.event_type} from {event.producer} starts {deployment}",
            subject=records.deployment_subject(deployment),
            actor=f"producer:{event.producer}",
            details={
                **common,
                "status": "accepted",
                "parameters": parameters,
                "prefect_idempotency_key": prefect_key,
                "occurred_at": event.occurred_at.isoformat(),
            },
        ),
        intake_decision_id(deployment, key, "accepted"),
        now,
        look_first=not seen.new,
    )
    flow_run_id = create_run(deployment, parameters, prefect_key)
    _, recorded_here = _append_once(
        log,
        records.event(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"run {flow_run_id} of {deployment} created for {event.event_type}",
            subject=records.deployment_subject(deployment),
            actor=f"producer:{event.producer}",
            details={
                **common,
                "status": "created",
                "flow_run_id": flow_run_id,
                "accepted_decision_id": accepted.decision_id,
            },
        ),
        intake_decision_id(deployment, key, "created"),
        now,
        look_first=not seen.new,
    )
    store.set_flow_run(deployment, key, flow_run_id)
    if not recorded_here:  # another delivery recorded this run: Prefect's key returned the same one
        return IntakeResult(status="duplicate", flow_run_id=flow_run_id, deployment=deployment)
    if emit is not None:
        name, _ = parse_event_type(event.event_type)
        emit(
            f"releasegate.{name}",
            {
                "event_id": event.event_id,
                "idempotency_key": key,
                "deployment": deployment,
                "flow_run_id": flow_run_id,
                "producer": event.producer,
                **event.payload,
            },
        )
    return IntakeResult(
        status="created", flow_run_id=flow_run_id, deployment=deployment, decision_id=accepted.decision_id
    )

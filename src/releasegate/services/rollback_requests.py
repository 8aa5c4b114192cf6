"""Monitoring-started rollbacks, bound by the service: which rollback run an EOD verdict started.

A rollback run may skip the manual-run contract (ticket, approval) only when it carries out the request
of a sealed EOD monitoring verdict. What proves that is not the event that created the run — anyone
who can run ``releasegate events send`` can send a ``monitoring.rollback.requested@v1`` event naming
any past verdict — but a sealed ``rollback_request`` record the EOD run writes once intake has
created the run (``record_request``). It names the monitoring decision, the business date, the
champion the verdict judged, the version the rollback acts on, and the one flow run it created.

``monitoring_request`` accepts a run as monitoring-started only when such a request names this very
run, and it is

* **genuine**: sealed, and its monitoring decision is a sealed ``monitoring`` record about the model
  that asked for this rollback method;
* **unchanged**: the run's parameters are the ones intake gave it and say what the request says (model,
  method, version, business date); the Prefect API lets anyone edit a run's parameters;
* **fresh**: the rollback starts on the business day the request was written (the desk's timezone,
  ``Europe/Zurich``), and the champion is still the one the verdict judged;
* **unspent**: no rollback record (refused, abandoned or final) names it yet; a rerun of the same run
  may finish the rollback it started (its pending record names the request).

Anything else — an event from the CLI included — is a manual run: the manual-run contract applies.
The request is written a moment after intake created the run, so a run whose model has a sealed
rollback verdict of today that has no request yet waits for it (``wait_for_request``), with a
generous deadline, before it is judged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from releasegate import records
from releasegate.decisions import DecisionKind, DecisionOutcome, DecisionRecord
from releasegate.policy.triggers import local_business_date
from releasegate.ports import Ports

BUSINESS_TIMEZONE = "Europe/Zurich"  # the EOD desk's (flows/eod_scoring.py)
ACTOR = "releasegate:eod-monitoring"
# The fields a request binds: the run's parameter of that name must say what the request says.
BOUND_PARAMETERS = {
    "model_name": "model_name",
    "method": "method",
    "expected_version": "version",
    "business_date": "business_date",
}


@dataclass(frozen=True)
class Binding:
    """The request a rollback run carries out (``request`` None: a manual run, ``why`` says why)."""

    request: DecisionRecord | None
    why: str


def _requests(ports: Ports, **query: Any) -> list[DecisionRecord]:
    good, forged = ports.log.trusted(kind=DecisionKind.rollback_request, **query)
    ports.log.refuse_forged(forged, "rollback")
    return good


def request_for_run(flow_run_id: str, ports: Ports) -> DecisionRecord | None:
    mine = [r for r in _requests(ports) if r.details.get("flow_run_id") == flow_run_id]
    return mine[0] if mine else None


def record_request(
    monitoring: DecisionRecord,
    *,
    method: str,
    champion: str,
    version: str,
    flow_run_id: str,
    ports: Ports,
) -> DecisionRecord | None:
    """The sealed request binding an EOD verdict's rollback to the run intake created for it; once per
    run (a retried EOD that intake answered "duplicate" finds the request it wrote before). None when
    intake's records do not show that run created for this verdict's own event (say an event sent by
    hand under the same idempotency key got there first): such a run is never bound."""
    existing = request_for_run(flow_run_id, ports)
    if existing is not None:
        return existing
    accepted = intake_event_of(flow_run_id, ports)
    if accepted is None or accepted.details.get("event_id") != f"{monitoring.decision_id}:rollback":
        # intake answered with a run created for another event under the same key: never bind it
        return None
    d = monitoring.details
    model, day = str(d["model_name"]), str(d["business_date"])
    return ports.log.append(
        records.rollback_request(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"EOD {day} {model}: {method} rollback of v{version} requested (champion judged "
            f"v{champion}, verdict {monitoring.decision_id}), carried out by flow run {flow_run_id} only",
            subject=records.model_subject(model),
            actor=ACTOR,
            details={
                "model_name": model,
                "business_date": day,
                "monitoring_decision_id": monitoring.decision_id,
                "champion": str(champion),
                "method": method,
                "version": str(version),
                "flow_run_id": flow_run_id,
            },
        )
    )


def intake_event_of(flow_run_id: str, ports: Ports) -> DecisionRecord | None:
    """Intake's sealed "accepted" event record behind the run its sealed "created" record names, if any."""
    good, _ = ports.log.trusted(kind=DecisionKind.event)
    created = [r for r in good if r.details.get("flow_run_id") == flow_run_id]
    accepted_ids = {r.details.get("accepted_decision_id") for r in created} | {r.decision_id for r in created}
    accepted = [r for r in good if r.decision_id in accepted_ids and r.details.get("parameters") is not None]
    return accepted[-1] if accepted else None


def _intake_parameters_unchanged(accepted: DecisionRecord, parameters: dict[str, Any]) -> bool:
    given = accepted.details["parameters"]
    return {k: str(v) for k, v in given.items()} == {k: str(parameters.get(k)) for k in given}


def _spent_by(request: DecisionRecord, ports: Ports) -> tuple[DecisionRecord | None, DecisionRecord | None]:
    """(a rollback record that used the request up, an unfinished pending rollback that carries it out)."""
    model = request.details.get("model_name")
    good, _ = ports.log.trusted(kind=DecisionKind.rollback, subject=f"model:{model}")
    mine = [r for r in good if r.details.get("rollback_request_id") == request.decision_id]
    ended = {r.details.get("pending_decision_id") for r in mine if r.details.get("status") in ("final", "abandoned")}
    spent = [r for r in mine if r.details.get("status") != "pending"]
    open_ = [r for r in mine if r.details.get("status") == "pending" and r.decision_id not in ended]
    return (spent[0] if spent else None), (open_[-1] if open_ else None)


def monitoring_request(flow_run_id: str, parameters: dict[str, Any], ports: Ports) -> Binding:
    """The sealed, fresh, unspent EOD request this run carries out, or why it is a manual run."""
    request = request_for_run(flow_run_id, ports)
    if request is None:
        return Binding(None, "no sealed EOD rollback request names this run")
    d = request.details
    verdicts, _ = ports.log.trusted(kind=DecisionKind.monitoring, subject=f"model:{d.get('model_name')}")
    verdict = next((v for v in verdicts if v.decision_id == d.get("monitoring_decision_id")), None)
    if (
        verdict is None
        or verdict.details.get("model_name") != d.get("model_name")
        or verdict.details.get("rollback_method") != d.get("method")
    ):
        return Binding(None, f"request {request.decision_id} names no sealed monitoring verdict asking for it")
    for param, field in BOUND_PARAMETERS.items():
        if str(parameters.get(param)) != str(d.get(field)):
            return Binding(
                None, f"the run's {param} is {parameters.get(param)!r}, the request {field} {d.get(field)!r}"
            )
    accepted = intake_event_of(flow_run_id, ports)
    if accepted is None or accepted.details.get("event_id") != f"{verdict.decision_id}:rollback":
        return Binding(None, "intake did not create this run for the verdict's own rollback event")
    if not _intake_parameters_unchanged(accepted, parameters):
        return Binding(None, "the run's parameters are not the ones intake gave it")
    spent, resuming = _spent_by(request, ports)
    if spent is not None:
        return Binding(None, f"request {request.decision_id} was already used (rollback record {spent.decision_id})")
    if resuming is not None:  # a rerun of this run: finish the rollback it started, wherever the champion is
        return Binding(request, f"resuming rollback {resuming.decision_id} of request {request.decision_id}")
    now = ports.clock.now()
    today = local_business_date(now, BUSINESS_TIMEZONE)
    asked = local_business_date(request.decision_timestamp, BUSINESS_TIMEZONE)
    if today != asked:
        return Binding(None, f"request {request.decision_id} was written on {asked}, it is now {today}: stale")
    registry = ports.registry
    champion = registry.alias_version(registry.model_name("prod", str(d["model_name"])), registry.CHAMPION)
    if champion != d.get("champion"):
        return Binding(None, f"the champion is v{champion}, the verdict judged v{d.get('champion')}: stale")
    return Binding(request, f"request {request.decision_id} of EOD verdict {d['monitoring_decision_id']}")


def _awaited(model: str, ports: Ports) -> bool:
    """A sealed rollback verdict of today for ``model`` whose EOD run has not written its request yet."""
    today = local_business_date(ports.clock.now(), BUSINESS_TIMEZONE)
    verdicts, _ = ports.log.trusted(kind=DecisionKind.monitoring, subject=f"model:{model}", newest_first=True, limit=20)
    fresh = [
        v
        for v in verdicts
        if v.details.get("rollback_method") and local_business_date(v.decision_timestamp, BUSINESS_TIMEZONE) == today
    ]
    answered = {r.details.get("monitoring_decision_id") for r in _requests(ports, subject=f"model:{model}")}
    return any(v.decision_id not in answered for v in fresh)


def wait_for_request(
    flow_run_id: str,
    model: str,
    ports: Ports,
    *,
    deadline_seconds: float = 120.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait (at most ``deadline_seconds``) while no request names this run but one is on its way."""
    give_up = time.monotonic() + deadline_seconds
    while request_for_run(flow_run_id, ports) is None and _awaited(model, ports) and time.monotonic() < give_up:
        sleep(1.0)

"""Tell the people on call that the deferral sweeper escalated something: a deferral past its SLA (alert
at 30 min, incident at 60), a queue's storm incident, or a gate failure nobody acknowledged. One notice
per escalation event and channel, over the same channels and notification log as the approvers' notices
(``services.promotion_notices.deliver``), so a second sweep sends nothing; a channel that fails is
recorded, and nothing here ever raises into the sweep.

Keys: ``deferral:<flow run id>:<level>``, ``storm:<queue>:<incident id>:<level>``,
``gate-failure:<decision id>``. Addressees: a deferral or storm goes to the ``overrides`` allow-list (who
may start a deferred run now), a gate failure to the ``exceptions`` list (who may grant a gate
exception); ``addressees`` reads a list by that name from the governed approvers config. The link is the
console's operations page, at the section the event is in (``<console_url>/operations#deferrals``,
``#gate-failures``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from releasegate.promotion_ports import Notice, Notifications
from releasegate.services.promotion_notices import deliver

_logger = logging.getLogger("releasegate.escalations")


def deferral_notice(e: dict[str, Any], who: tuple[str, ...], link: str) -> Notice:
    run, level = e["flow_run_id"], e["level"]
    return Notice(
        key=f"deferral:{run}:{level}",
        run_id=f"deferral:{run}",
        role="overrides",
        model=e.get("deployment", ""),
        version="",
        requested_by="releasegate:deferral-sweeper",
        approvers=who,
        link=link,
        kind="escalation",
        summary=f"deferral SLA {level}: {e.get('deployment', '?')} run {run} deferred for {e['waited_minutes']} min",
        facts=(
            f"Reason: {e.get('reason_code', '?')}",
            f"Next evaluation: {e.get('next_evaluation_at', '?')}",
            f"Escalation decision: {e['decision_id']}",
        )
        + ((f"Storm incident: {e['storm_incident']}",) if e.get("storm_incident") else ()),
    )


def storm_notice(s: dict[str, Any], who: tuple[str, ...], link: str) -> Notice:
    queue, level, incident = s["queue"], s["state"], s["decision_id"]
    return Notice(
        key=f"storm:{queue}:{incident}:{level}",
        run_id=f"storm:{queue}",
        role="overrides",
        model=f"queue {queue}",
        version="",
        requested_by="releasegate:deferral-sweeper",
        approvers=who,
        link=link,
        kind="escalation",
        summary=f"deferral storm {level}: queue {queue}, {s.get('open_deferrals', '?')} runs deferred",
        facts=(
            f"Reason: STORM, oldest deferred for {s.get('waited_minutes', '?')} min",
            f"Predicted start of the last run: {s.get('predicted_drain_at') or 'unknown'}",
            f"Incident: {incident}",
        ),
    )


def gate_failure_notice(g: dict[str, Any], who: tuple[str, ...], link: str) -> Notice:
    failure = g["gate_failure"]
    model, version = g.get("model_name", "?"), str(g.get("candidate_version", "?"))
    return Notice(
        key=f"gate-failure:{failure}",
        run_id=f"gate-failure:{failure}",
        role="exceptions",
        model=model,
        version=version,
        requested_by="releasegate:deferral-sweeper",
        approvers=who,
        link=link,
        kind="escalation",
        summary=f"P1 incident: gate failure of {model} v{version} unacknowledged for {g['waited_minutes']} min",
        facts=(
            "Reason: GATE_FAILURE_UNACKNOWLEDGED",
            f"Gate failure: {failure}",
            f"Incident: {g['incident_decision']}",
        ),
    )


def notify_escalations(
    n: Notifications | None,
    addressees: Callable[[str], Sequence[str]],
    escalations: Iterable[dict[str, Any]] = (),
    storms: Iterable[dict[str, Any]] = (),
    gate_failures: Iterable[dict[str, Any]] = (),
    logger: logging.Logger | logging.LoggerAdapter[Any] = _logger,
) -> list[str]:
    """Send the notice of each escalation event not yet sent; returns the decision ids recorded."""
    if n is None or not n.notifiers:
        return []
    page = f"{n.console_url.rstrip('/')}/operations"
    lists: dict[str, tuple[str, ...]] = {}

    def who(name: str) -> tuple[str, ...]:
        if name not in lists:
            try:
                lists[name] = tuple(addressees(name))
            except Exception as exc:  # no list: the webhook still carries the notice
                logger.warning("escalation addressees (%s) not read: %s", name, exc)
                lists[name] = ()
        return lists[name]

    made: list[tuple[Callable[[dict[str, Any], tuple[str, ...], str], Notice], dict[str, Any], str, str]] = []
    made += [(deferral_notice, e, "overrides", "deferrals") for e in escalations]
    made += [(storm_notice, s, "overrides", "deferrals") for s in storms if s.get("state") != "closed"]
    made += [(gate_failure_notice, g, "exceptions", "gate-failures") for g in gate_failures]
    done: list[str] = []
    for make, event, addressed, section in made:
        try:
            done += deliver(n, make(event, who(addressed), f"{page}#{section}"), logger)
        except Exception as exc:  # a notice never fails the sweep
            logger.warning("escalation notice not sent: %s", exc)
    return done

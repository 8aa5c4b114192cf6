"""Protected champion: compare each governed model's ``champion`` / ``archive`` aliases in MLflow with
the decision log (``policy.alias_guard``), report a move made outside releasegate as an incident (a
Prefect event and an ``incident`` record) and, when restoring is on (``RELEASEGATE_ALIAS_GUARD``,
default ``restore``), put the alias back where the log's last sealed promotion or rollback put it.

Runs inside the registry watcher, under the model's alias lock (the one the binary step of a promotion
and every rollback take), so it never judges aliases in the middle of a releasegate move. A model with
a promotion or rollback still pending (interrupted, not yet finished) is left to the flow that finishes
it. The incident record is written *before* an alias is moved back (no alias moved without its record);
the same misplacement is reported once, not every minute.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision
from releasegate.policy.alias_guard import AliasEvent, AliasFinding, expected_aliases, findings
from releasegate.ports import Ports
from releasegate.services.promotion_log import promotion_history
from releasegate.services.rollback import unfinished_rollback

INCIDENT_KIND = "alias_moved_outside_releasegate"
ACTOR = "releasegate:alias-guard"
NOT_MOVED = "; reported, not moved (no sealed record to restore from, or RELEASEGATE_ALIAS_GUARD=report)"


@dataclass
class GuardResult:
    model: str
    status: str  # ok | in_flight | reported | restored | already_reported | "not checked: <why>"
    findings: list[AliasFinding] = field(default_factory=list)
    incident_decision: str | None = None
    aliases_after: dict[str, str] = field(default_factory=dict)


def _events(model: str, ports: Ports) -> list[AliasEvent]:
    finals = promotion_history(model, "alias-guard", ports.log).finals
    out = [AliasEvent(r.decision_id, r.decision_timestamp, "promotion", r.details) for r in finals]
    good, _ = ports.log.trusted(kind="rollback", subject=f"model:{model}")
    out += [
        AliasEvent(r.decision_id, r.decision_timestamp, "rollback", r.details)
        for r in good
        if r.details.get("status") == "final"
    ]
    return sorted(out, key=lambda e: e.at)  # stable: log order within one instant


def _in_flight(model: str, ports: Ports) -> bool:
    history = promotion_history(model, "alias-guard", ports.log)
    if any(p.decision_id not in history.ends for p in history.pendings):
        return True
    return unfinished_rollback(model, ports) is not None


def _already_reported(model: str, found: dict[str, str], ports: Ports) -> bool:
    """The newest alias incident of the model saw exactly these aliases and moved nothing back."""
    mine = [
        r
        for r in ports.log.query(kind=DecisionKind.incident, subject=f"model:{model}")
        if r.details.get("incident_kind") == INCIDENT_KIND
    ]
    return bool(mine) and mine[-1].details.get("found") == found and not mine[-1].details.get("restore")


def guard_model(
    model: str,
    ports: Ports,
    *,
    restore: bool = True,
    emit_event: Callable[..., Any] | None = None,
    lock: Callable[[str], AbstractContextManager[Any]] = lambda _model: nullcontext(),
) -> GuardResult:
    registry, log = ports.registry, ports.log
    prod = registry.model_name("prod", model)
    with lock(model):
        if _in_flight(model, ports):
            return GuardResult(model, "in_flight", aliases_after=registry.aliases(prod))
        found = {a: v for a, v in registry.aliases(prod).items() if a in ("champion", "archive")}
        expected = expected_aliases(_events(model, ports))
        wrong = findings(expected, found)
        if not wrong:
            return GuardResult(model, "ok", aliases_after=found)
        fix = restore and expected is not None
        if not fix and _already_reported(model, found, ports):
            return GuardResult(model, "already_reported", wrong, aliases_after=found)
        target = {f.alias: f.expected for f in wrong} if fix else {}
        rec = log.append(
            NewDecision(
                decision_kind=DecisionKind.incident,
                decision_outcome=DecisionOutcome.reject,
                decision_rationale="; ".join(str(f) for f in wrong) + ("; moved back" if fix else NOT_MOVED),
                subject=f"model:{model}",
                actor=ACTOR,
                rollback_plan_ref=f"alias-guard:{prod}:{expected.because}" if fix and expected else None,
                details={
                    "incident_for": expected.because if expected else "none",
                    "incident_kind": INCIDENT_KIND,
                    "severity": "P1",
                    "model_name": model,
                    "registered_model": prod,
                    "found": found,
                    "expected": {"champion": expected.champion, "archive": expected.archive} if expected else None,
                    "restore": target,
                },
            )
        )
        for alias, version in target.items():  # idempotent: a rerun after a crash moves the same way
            if version is None:
                registry.delete_alias(prod, alias)
            else:
                registry.set_alias(prod, alias, version)
        after = {a: v for a, v in registry.aliases(prod).items() if a in ("champion", "archive")}
    if emit_event is not None:
        emit_event(
            event="releasegate.incident.opened",
            resource={"prefect.resource.id": f"releasegate.model.{model}", "prefect.resource.name": prod},
            payload={
                "severity": "P1",
                "reason": INCIDENT_KIND,
                "incident_decision_id": rec.decision_id,
                "findings": [str(f) for f in wrong],
                "restored": bool(target),
            },
        )
    return GuardResult(model, "restored" if target else "reported", wrong, rec.decision_id, after)

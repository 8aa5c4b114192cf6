"""Protected champion: compare each governed model's ``champion`` / ``archive`` aliases in MLflow with
the decision log (``policy.alias_guard``), report a move made outside releasegate as an incident (a
Prefect event and an ``incident`` record) and, when restoring is on (``RELEASEGATE_ALIAS_GUARD``,
default ``restore``), put the alias back where the log's last sealed promotion or rollback put it.

Runs inside the registry watcher, under the model's alias lock (the one the binary step of a promotion
and every rollback take), so it never judges aliases in the middle of a releasegate move. The guard
never stops reading: a promotion or rollback whose pending record has no end (its worker died, or its
registry call failed) excuses only the alias states its own recorded moves lead to (a promotion:
archive -> the champion it replaces, then champion -> the copy it made; a full rollback: champion ->
its target, the archive that pointed there deleted); any other state is an incident like any other.
Holding the lock, the guard is the one finishing such a promotion: it completes it when it is still
valid, or abandons it (recorded, the champion put back) — ``services.release.finish_unfinished`` — so an
interrupted promotion ends within a pass of the watcher, not at the model's next promotion. The
incident record is written *before* an alias is moved back (no alias moved without its record); the
same misplacement is reported once, not every minute.

A halted model (``services.halt``) has its champion pinned: the guard expects the champion its confirmed
halt pinned, excuses no interrupted promotion's state, and puts any other champion back as an incident
``champion_moved_while_halted`` (also when ``RELEASEGATE_ALIAS_GUARD=report``: the halt is the overseers'
decision that nothing moves).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from releasegate import records
from releasegate.decisions import DecisionKind, DecisionOutcome, DecisionRecord
from releasegate.policy.alias_guard import (
    AliasEvent,
    AliasFinding,
    Expected,
    expected_aliases,
    findings,
    left_by,
    promotion_steps,
    rollback_steps,
)
from releasegate.policy.halt import HaltState
from releasegate.ports import Ports
from releasegate.services.halt_log import halt_state
from releasegate.services.promotion_log import promotion_history
from releasegate.services.release import finish_unfinished
from releasegate.services.rollback import unfinished_rollback

INCIDENT_KIND = "alias_moved_outside_releasegate"
HALTED_INCIDENT_KIND = "champion_moved_while_halted"  # any move of a halted model's champion
ACTOR = "releasegate:alias-guard"
NOT_MOVED = "; reported, not moved (no sealed record to restore from, or RELEASEGATE_ALIAS_GUARD=report)"


@dataclass
class GuardResult:
    model: str
    status: str  # ok | finished | reported | restored | already_reported | "not checked: <why>"
    findings: list[AliasFinding] = field(default_factory=list)
    incident_decision: str | None = None
    aliases_after: dict[str, str] = field(default_factory=dict)
    # interrupted promotions this pass ended: finish_unfinished's answers (finished, or abandoned and why)
    promotions: list[dict[str, Any]] = field(default_factory=list)


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


def pinned(expected: Expected | None, halt: HaltState, found: dict[str, str]) -> Expected:
    """Where a halted model's aliases must be: the champion its confirmed halt pinned, the archive where
    the log puts it (a model releasegate never promoted: where it is, not releasegate's to judge)."""
    assert halt.halt_decision_id is not None and halt.halted_at is not None
    return Expected(
        champion=halt.pinned_champion,
        archive=expected.archive if expected else found.get("archive"),
        because=halt.halt_decision_id,
        at=halt.halted_at,
    )


def approved_champion(model: str, ports: Ports) -> str | None:
    """The champion a halt pins: where the log's last sealed promotion or rollback put it, else (a model
    releasegate never promoted) the registry's champion now."""
    expected = expected_aliases(_events(model, ports))
    if expected is not None:
        return expected.champion
    registry = ports.registry
    return registry.alias_version(registry.model_name("prod", model), registry.CHAMPION)


def _unfinished_promotions(model: str, ports: Ports) -> list[DecisionRecord]:
    history = promotion_history(model, "alias-guard", ports.log)
    return [p for p in history.pendings if p.decision_id not in history.ends]


def _excused(model: str, expected: Expected | None, pendings: list[DecisionRecord], ports: Ports):
    """The alias states the unfinished promotions and rollback of ``model`` may have left (None: none)."""
    registry = ports.registry
    states: list[dict[str, str | None]] = []
    for p in pendings:
        d = p.details
        copy = registry.find_copy(
            d["prod_model"], d["staging_model"], str(d["candidate_version"]), d["candidate_sha256"], p.decision_id
        )
        states += promotion_steps(expected, d.get("previous_champion"), copy)
    rollback = unfinished_rollback(model, ports)
    if rollback is not None:
        d = rollback.details
        states += rollback_steps(expected, d.get("method"), d.get("previous_version"), d.get("new_version"))
    return states or None


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
    registry = ports.registry
    prod = registry.model_name("prod", model)
    with lock(model):
        found = {a: v for a, v in registry.aliases(prod).items() if a in ("champion", "archive")}
        expected = expected_aliases(_events(model, ports))
        pendings = _unfinished_promotions(model, ports)
        halt = halt_state(ports.log, model, ports.clock.now(), reader="alias-guard")
        if halt.in_force:  # the champion is pinned: no move is excused, every one is put back
            expected = pinned(expected, halt, found)
            excused = None
        else:
            excused = _excused(model, expected, pendings, ports)
        wrong = [] if excused is not None and left_by(expected, found, excused) else findings(expected, found)
        rec = None
        target: dict[str, str | None] = {}
        fix = (restore or halt.in_force) and expected is not None
        repeated = bool(wrong) and not fix and _already_reported(model, found, ports)
        if wrong and not repeated:
            target = {f.alias: f.expected for f in wrong} if fix else {}
            kind = HALTED_INCIDENT_KIND if halt.in_force else INCIDENT_KIND
            rec = _record_incident(model, prod, wrong, found, expected, target, ports, kind)
            for alias, version in target.items():  # idempotent: a rerun after a crash moves the same way
                if version is None:
                    registry.delete_alias(prod, alias)
                else:
                    registry.set_alias(prod, alias, version)
        # Holding the alias lock, nobody else is finishing them: end them now, not at the next promotion.
        ended = finish_unfinished(model, ports=ports) if pendings else []
        after = {a: v for a, v in registry.aliases(prod).items() if a in ("champion", "archive")}
    if rec is not None and emit_event is not None:
        emit_event(
            event="releasegate.incident.opened",
            resource={"prefect.resource.id": f"releasegate.model.{model}", "prefect.resource.name": prod},
            payload={
                "severity": "P1",
                "reason": rec.details.get("incident_kind"),
                "incident_decision_id": rec.decision_id,
                "findings": [str(f) for f in wrong],
                "restored": bool(target),
            },
        )
    if repeated:
        return GuardResult(model, "already_reported", wrong, aliases_after=after, promotions=ended)
    if rec is not None:
        return GuardResult(model, "restored" if target else "reported", wrong, rec.decision_id, after, ended)
    return GuardResult(model, "finished" if ended else "ok", aliases_after=after, promotions=ended)


def _record_incident(
    model: str,
    prod: str,
    wrong: list[AliasFinding],
    found: dict[str, str],
    expected: Expected | None,
    target: dict[str, str | None],
    ports: Ports,
    kind: str = INCIDENT_KIND,
) -> DecisionRecord:
    fix = bool(target)
    return ports.log.append(
        records.incident(
            decision_outcome=DecisionOutcome.reject,
            decision_rationale="; ".join(str(f) for f in wrong) + ("; moved back" if fix else NOT_MOVED),
            subject=records.model_subject(model),
            actor=ACTOR,
            rollback_plan_ref=f"alias-guard:{prod}:{expected.because}" if fix and expected else None,
            details={
                "incident_for": expected.because if expected else "none",
                "incident_kind": kind,
                "severity": "P1",
                "model_name": model,
                "registered_model": prod,
                "found": found,
                "expected": {"champion": expected.champion, "archive": expected.archive} if expected else None,
                "restore": target,
            },
        )
    )

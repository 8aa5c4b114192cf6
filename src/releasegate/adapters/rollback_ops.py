"""Rollback I/O: approved versions from the decision log, alias moves in MLflow, verification, record.

Crash-safe in the same way as binary promotion: a ``rollback`` record with ``details.status =
"pending"`` (the plan) is written before any alias moves, and the ``final`` record (verification and
timings) names it. A rerun that finds a pending rollback of the model without its final finishes that
plan (the alias moves are idempotent) instead of planning anew, so a rollback killed during
verification is never left without its record. Only records sealed by the service path
(``releasegate.trust``) count: a forged "final promotion" never makes a version a rollback target.
"""

from __future__ import annotations

import time
from typing import Literal

from ..datagen import generate
from ..decisions import DecisionKind, DecisionOutcome, NewDecision
from ..rollback import RollbackPlan, RollbackRecord, plan_rollback, verification_ok
from . import context, registry


def approved_prod_versions(model: str) -> set[str]:
    """Prod versions with a sealed final promotion decision that completes a sealed pending one."""
    log = context.decision_log()
    good, forged = log.trusted(kind="promotion")
    log.refuse_forged([f for f in forged if f.details.get("model_name") == model], "rollback")
    mine = [r for r in good if r.details.get("model_name") == model]
    pendings = {r.decision_id for r in mine if r.details.get("status") == "pending"}
    return {
        str(r.details["prod_version"])
        for r in mine
        if r.details.get("status") == "final"
        and r.details.get("prod_version")
        and r.details.get("pending_decision_id") in pendings
    }


def unfinished_rollback(model: str):
    """The newest sealed pending rollback of ``model`` without its final record, if any."""
    good, _ = context.decision_log().trusted(kind="rollback", subject=f"model:{model}")
    ended = {r.details.get("pending_decision_id") for r in good if r.details.get("status") == "final"}
    pending = [r for r in good if r.details.get("status") == "pending" and r.decision_id not in ended]
    return pending[-1] if pending else None


def _refuse(model: str, exc: Exception, aliases: dict, trigger: str, method: str, root_cause: str, by: str):
    context.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.rollback,
            decision_outcome=DecisionOutcome.reject,
            decision_rationale=str(exc),
            subject=f"model:{model}",
            actor=by,
            details={
                # what was asked for; "none" where the registry had nothing
                "previous_version": aliases.get(registry.CHAMPION) or "none",
                "new_version": aliases.get(registry.ARCHIVE) or "none",
                "trigger": trigger,
                "method": method,
                "root_cause": root_cause,
                "refused_field": getattr(exc, "field", None),
            },
        )
    )


def execute_rollback(
    model: str,
    *,
    method: Literal["full", "canary"] = "full",
    trigger: str,
    root_cause: str,
    requested_by: str,
    follow_up: str = "root-cause analysis; retrain if drift is confirmed",
    expected_version: str | None = None,
) -> RollbackRecord:
    """Plan (or resume), record pending, move aliases, verify, record final.

    A refusal (``RollbackRefused``) is recorded and changes nothing. Callers hold the model's alias
    lock (``promotion_ops.ensure_alias_lock``)."""
    clock = context.clock()
    log = context.decision_log()
    started, t0 = clock.now(), time.perf_counter()
    prod = registry.model_name("prod", model)
    pending = unfinished_rollback(model)
    converged = pending is not None
    if pending is not None:  # an earlier rollback stopped after its pending record: finish its plan
        d = pending.details
        plan = RollbackPlan(
            method=d["method"],
            previous_version=d.get("previous_version"),
            new_version=d.get("new_version"),
            drop_challenger=d.get("dropped_challenger"),
        )
        trigger, root_cause, requested_by = d["trigger"], d["root_cause"], d["requested_by"]
    else:
        aliases = registry.aliases(prod)
        try:
            plan = plan_rollback(
                method,
                aliases.get(registry.CHAMPION),
                aliases.get(registry.ARCHIVE),
                aliases.get(registry.CHALLENGER),
                approved_prod_versions(model),
                expected_version,
            )
        except Exception as exc:
            _refuse(model, exc, aliases, trigger, method, root_cause, requested_by)
            raise
        pending = log.append(
            NewDecision(
                decision_kind=DecisionKind.rollback,
                decision_outcome=DecisionOutcome.accept,
                decision_rationale=f"{plan.method} rollback of {prod}: v{plan.previous_version} -> "
                f"v{plan.new_version} ({trigger}) (pending registry)",
                subject=f"model:{model}",
                actor=requested_by,
                rollback_plan_ref=f"rollback:{prod}:{plan.previous_version}->{plan.new_version}",
                details={
                    "status": "pending",
                    "model_name": model,
                    "method": plan.method,
                    "previous_version": plan.previous_version,
                    "new_version": plan.new_version,
                    "dropped_challenger": plan.drop_challenger,
                    "trigger": trigger,
                    "root_cause": root_cause,
                    "requested_by": requested_by,
                },
            )
        )
    r0 = time.perf_counter()
    if plan.method == "full":  # each step is idempotent: a rerun repeats it safely
        registry.set_alias(prod, registry.CHAMPION, plan.new_version)
        if registry.alias_version(prod, registry.ARCHIVE) == plan.new_version:
            registry.delete_alias(prod, registry.ARCHIVE)  # the archived version is serving again
        registry.set_tags(prod, plan.previous_version, {"rolled_back": "true", "rollback_trigger": trigger})
    if plan.drop_challenger and registry.alias_version(prod, registry.CHALLENGER) == plan.drop_challenger:
        registry.delete_alias(prod, registry.CHALLENGER)
    registry_seconds = time.perf_counter() - r0
    sample = generate(500, seed=7)
    smoke = registry.smoke_test(f"models:/{prod}@{registry.CHAMPION}", sample.X)
    failure_rate = 0.0 if smoke["ok"] else 1.0
    verification = {
        "smoke": smoke,
        "failure_rate": failure_rate,
        "champion_after": registry.alias_version(prod, registry.CHAMPION),
    }
    finished = clock.now()
    record = RollbackRecord(
        model_name=model,
        method=plan.method,
        previous_version=plan.previous_version,
        new_version=plan.new_version,
        dropped_challenger=plan.drop_challenger,
        trigger=trigger,
        root_cause=root_cause,
        requested_by=requested_by,
        started_at=started,
        finished_at=finished,
        duration_seconds=round(time.perf_counter() - t0, 4),
        registry_seconds=round(registry_seconds, 4),
        verification=verification,
        verified=verification_ok(smoke, failure_rate),
        follow_up=follow_up,
    )
    log.append(
        NewDecision(
            decision_kind=DecisionKind.rollback,
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=(
                f"{plan.method} rollback of {prod}: v{plan.previous_version} -> v{plan.new_version} ({trigger})"
                + (" (finished after an interrupted attempt)" if converged else "")
            ),
            subject=f"model:{model}",
            actor=requested_by,
            rollback_plan_ref=pending.rollback_plan_ref,
            details={
                **record.model_dump(mode="json"),
                "status": "final",
                "pending_decision_id": pending.decision_id,
                "converged": converged,
            },
        )
    )
    return record

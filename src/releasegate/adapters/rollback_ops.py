"""Rollback I/O: approved versions from the decision log, alias moves in MLflow, verification, record."""

from __future__ import annotations

import time
from typing import Literal

from ..datagen import generate
from ..decisions import DecisionKind, DecisionOutcome, NewDecision
from ..rollback import RollbackRecord, plan_rollback, verification_ok
from . import context, registry


def approved_prod_versions(model: str) -> set[str]:
    """Prod versions with a final promotion decision (what the promotion flow writes last)."""
    out = set()
    for rec in context.decision_log().query(kind="promotion"):
        d = rec.details
        if d.get("model_name") == model and d.get("status") == "final" and d.get("prod_version"):
            out.add(str(d["prod_version"]))
    return out


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
    """Plan, move aliases, verify, record. A refusal (``RollbackRefused``) is recorded and changes nothing."""
    clock = context.clock()
    started, t0 = clock.now(), time.perf_counter()
    prod = registry.model_name("prod", model)
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
        context.decision_log().append(
            NewDecision(
                decision_kind=DecisionKind.rollback,
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=str(exc),
                subject=f"model:{model}",
                actor=requested_by,
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
        raise
    r0 = time.perf_counter()
    if plan.method == "full":
        registry.set_alias(prod, registry.CHAMPION, plan.new_version)
        registry.delete_alias(prod, registry.ARCHIVE)  # the archived version is serving again
        registry.set_tags(prod, plan.previous_version, {"rolled_back": "true", "rollback_trigger": trigger})
    if plan.drop_challenger:
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
    context.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.rollback,
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=(
                f"{plan.method} rollback of {prod}: v{plan.previous_version} -> v{plan.new_version} ({trigger})"
            ),
            subject=f"model:{model}",
            actor=requested_by,
            rollback_plan_ref=f"rollback:{prod}:{plan.previous_version}->{plan.new_version}",
            details=record.model_dump(mode="json"),
        )
    )
    return record

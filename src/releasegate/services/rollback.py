"""Rollback I/O: approved versions from the decision log, alias moves in MLflow, verification, record.

Crash-safe in the same way as binary promotion: a ``rollback`` record with ``details.status =
"pending"`` (the plan) is written before any alias moves, and the ``final`` record (verification and
timings) names it. A rerun that finds a pending rollback of the model without its final finishes that
plan (the alias moves are idempotent) instead of planning anew, so a rollback killed during
verification is never left without its record. Only records sealed by the service path
(``releasegate.store.trust``) count: a forged "final promotion" never makes a version a rollback target.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

from releasegate import records
from releasegate.decisions import DecisionOutcome, DecisionRecord
from releasegate.policy.rollback import RollbackPlan, RollbackRecord, RollbackRefused, plan_rollback, verification_ok
from releasegate.ports import Ports
from releasegate.services.halt_log import raise_if_halted
from releasegate.services.promotion_log import promotion_history


def rollback_targets(model: str, champion: str | None, ports: Ports) -> tuple[set[str], dict[str, str]]:
    """The versions a full rollback may go to, and the artifact hash each had when it was promoted.

    Approved (a sealed final promotion), not rolled away from since its last promotion, and — when the
    champion's own final promotion names the champion it replaced — exactly that one: an ``archive``
    alias moved by hand to some older approved version is not a rollback target."""
    finals = promotion_history(model, "rollback", ports.log).finals
    promoted_at: dict[str, datetime] = {}
    sha: dict[str, str] = {}
    for r in finals:
        v = str(r.details["prod_version"])
        promoted_at[v] = r.decision_timestamp
        if r.details.get("prod_sha256"):
            sha[v] = r.details["prod_sha256"]
    good, _ = ports.log.trusted(kind="rollback", subject=f"model:{model}")
    for r in good:
        v = str(r.details.get("previous_version"))
        if r.details.get("status") == "final" and r.details.get("method") == "full" and v in promoted_at:
            if r.decision_timestamp >= promoted_at[v]:
                del promoted_at[v]  # rolled away from after its last promotion
    allowed = set(promoted_at)
    mine = [r for r in finals if str(r.details["prod_version"]) == champion]
    if mine and mine[-1].details.get("previous_champion"):
        allowed &= {str(mine[-1].details["previous_champion"])}
    return allowed, sha


def unfinished_rollback(model: str, ports: Ports) -> DecisionRecord | None:
    """The newest sealed pending rollback of ``model`` without its final (or abandoned) record, if any."""
    good, _ = ports.log.trusted(kind="rollback", subject=f"model:{model}")
    ended = {r.details.get("pending_decision_id") for r in good if r.details.get("status") in ("final", "abandoned")}
    pending = [r for r in good if r.details.get("status") == "pending" and r.decision_id not in ended]
    return pending[-1] if pending else None


def _stale(
    pending: DecisionRecord, model: str, prod: str, method: str, expected_version: str | None, ports: Ports
) -> str | None:
    """Why an interrupted rollback must not be finished now (None: finish it)."""
    d, registry = pending.details, ports.registry
    later = [
        r
        for r in ports.log.trusted(kind="promotion", since=pending.decision_timestamp)[0]
        if r.details.get("model_name") == model and r.details.get("status") == "final"
    ]
    if later:
        return f"a later promotion ({later[-1].decision_id}) changed the model since"
    if d["method"] != method:
        return f"it was a {d['method']} rollback, this request is {method}"
    if d["method"] == "full":
        champion = registry.alias_version(prod, registry.CHAMPION)
        if champion not in (d.get("previous_version"), d.get("new_version")):
            return f"the champion is v{champion}, neither the version it rolled away from nor its target"
        if expected_version is not None and expected_version != d.get("previous_version"):
            return f"this request judged v{expected_version}, it rolled away from v{d.get('previous_version')}"
    else:
        challenger = registry.alias_version(prod, registry.CHALLENGER)
        if challenger not in (None, d.get("dropped_challenger")):
            return f"the challenger is now v{challenger}"
        if expected_version is not None and expected_version != d.get("dropped_challenger"):
            return f"this request judged v{expected_version}, it dropped v{d.get('dropped_challenger')}"
    return None


def _refuse(
    model: str,
    exc: Exception,
    aliases: dict,
    trigger: str,
    method: str,
    root_cause: str,
    by: str,
    ports: Ports,
    request_id: str | None = None,
) -> None:
    registry = ports.registry
    ports.log.append(
        records.rollback(
            decision_outcome=DecisionOutcome.reject,
            decision_rationale=str(exc),
            subject=records.model_subject(model),
            actor=by,
            details={
                # what was asked for; "none" where the registry had nothing
                "previous_version": aliases.get(registry.CHAMPION) or "none",
                "new_version": aliases.get(registry.ARCHIVE) or "none",
                "trigger": trigger,
                "method": method,
                "root_cause": root_cause,
                "refused_field": getattr(exc, "field", None),
                "rollback_request_id": request_id,  # an EOD request this refusal used up
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
    ports: Ports,
    business_date: date | None = None,
    verify_day: Callable[[str, str, date], dict[str, Any]] | None = None,
    request_id: str | None = None,
) -> RollbackRecord:
    """Plan (or resume), record pending, move aliases, verify, record final.

    ``request_id``: the EOD ``rollback_request`` this rollback carries out (``services.rollback_requests``);
    its pending, final or refusal record names it, which uses the request up. A refusal
    (``RollbackRefused``) is recorded and changes nothing. Callers hold the model's alias lock
    (``adapters.prefect_locks.ensure_alias_lock``)."""
    clock, log, registry = ports.clock, ports.log, ports.registry
    started, t0 = clock.now(), time.perf_counter()
    # a halted model's champion is pinned: no rollback moves it (the refusal is recorded)
    raise_if_halted(log, model, started, what="rollback", subject=records.model_subject(model), actor=requested_by)
    prod = registry.model_name("prod", model)
    pending = unfinished_rollback(model, ports)
    why = _stale(pending, model, prod, method, expected_version, ports) if pending is not None else None
    if pending is not None and why is not None:  # an interrupted one that no longer fits: record, plan anew
        d = pending.details
        log.append(
            records.rollback(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"interrupted rollback {pending.decision_id} abandoned: {why}",
                subject=records.model_subject(model),
                actor=requested_by,
                details={
                    **{k: v for k, v in d.items() if k not in ("status", "seal")},
                    "previous_version": d.get("previous_version") or "none",
                    "new_version": d.get("new_version") or "none",
                    "status": "abandoned",
                    "pending_decision_id": pending.decision_id,
                },
            )
        )
        pending = None
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
        request_id = d.get("rollback_request_id") or request_id
    else:
        aliases = registry.aliases(prod)
        try:
            targets, promoted_sha = rollback_targets(model, aliases.get(registry.CHAMPION), ports)
            plan = plan_rollback(
                method,
                aliases.get(registry.CHAMPION),
                aliases.get(registry.ARCHIVE),
                aliases.get(registry.CHALLENGER),
                targets,
                expected_version,
            )
            if plan.method == "full" and plan.new_version in promoted_sha:
                now_sha = registry.artifact_sha256(f"models:/{prod}/{plan.new_version}")
                if now_sha != promoted_sha[plan.new_version]:
                    raise RollbackRefused(
                        "archive",
                        f"{prod} v{plan.new_version} hashes {now_sha[:12]}, but was promoted as "
                        f"{promoted_sha[plan.new_version][:12]}: not the approved binary",
                    )
        except (RollbackRefused, ValueError) as exc:
            _refuse(model, exc, aliases, trigger, method, root_cause, requested_by, ports, request_id)
            raise
        pending = log.append(
            records.rollback(
                decision_outcome=DecisionOutcome.accept,
                decision_rationale=f"{plan.method} rollback of {prod}: v{plan.previous_version} -> "
                f"v{plan.new_version} ({trigger}) (pending registry)",
                subject=records.model_subject(model),
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
                    "rollback_request_id": request_id,
                },
            )
        )
    r0 = time.perf_counter()
    if plan.method == "full":  # each step is idempotent: a rerun repeats it safely
        assert plan.new_version is not None  # a full plan rolls back to the archive, which it requires
        registry.set_alias(prod, registry.CHAMPION, plan.new_version)
        if registry.alias_version(prod, registry.ARCHIVE) == plan.new_version:
            registry.delete_alias(prod, registry.ARCHIVE)  # the archived version is serving again
        # (plan_rollback refuses a full rollback without a champion: previous_version is set here)
        registry.set_tags(prod, plan.previous_version, {"rolled_back": "true", "rollback_trigger": trigger})
    if plan.drop_challenger and registry.alias_version(prod, registry.CHALLENGER) == plan.drop_challenger:
        registry.delete_alias(prod, registry.CHALLENGER)
    registry_seconds = time.perf_counter() - r0
    uri = f"models:/{prod}@{registry.CHAMPION}"
    smoke = registry.smoke_test(uri)  # the restored version's own input_example
    failure_rate = 0.0 if smoke["ok"] else 1.0
    # and, given the business date that triggered it, the restored version on that day's real inputs
    serving = plan.new_version or registry.alias_version(prod, registry.CHAMPION)
    on_day = verify_day(model, serving, business_date) if verify_day and business_date and serving else None
    if on_day is not None:
        failure_rate = max(failure_rate, float(on_day.get("failure_rate", 1.0)))
    verification = {
        "smoke": smoke,
        "business_date": on_day,
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
        verified=verification_ok(smoke, failure_rate)
        and (on_day is None or bool(on_day.get("ok")))
        and verification["champion_after"] == plan.new_version,
        follow_up=follow_up,
    )
    log.append(
        records.rollback(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=(
                f"{plan.method} rollback of {prod}: v{plan.previous_version} -> v{plan.new_version} ({trigger})"
                + (" (finished after an interrupted attempt)" if converged else "")
            ),
            subject=records.model_subject(model),
            actor=requested_by,
            rollback_plan_ref=pending.rollback_plan_ref,
            details={
                **record.model_dump(mode="json"),
                "status": "final",
                "pending_decision_id": pending.decision_id,
                "converged": converged,
                "rollback_request_id": request_id,
            },
        )
    )
    return record

"""Promotion I/O: the dossier from MLflow, approval records, and binary promotion.

Binary promotion writes in this order, so that a crash at any point is detected and a rerun converges,
and no alias ever moves without its decision:

1. a ``promotion`` decision with ``details.status = "pending"`` (every ref, tech_ready and
   business_approved as separate facts, the candidate's artifact hash);
2. the registry: ``copy_model_version`` staging → prod (the exact binary tested in staging, never
   retrained), the copy's artifacts hashed and compared with the candidate's, the prod version tagged
   (source version, git SHA, decision_id), ``champion`` moved to it and the previous champion to
   ``archive``;
3. a ``promotion`` decision with ``details.status = "final"`` naming the pending one.

A rerun that finds a pending decision without its final one finishes from there instead of copying
again: before any copy it looks for a prod version already tagged with the pending decision, or an
untagged copy of the same source (``models:/staging.<model>/<version>``, which ``copy_model_version``
records as the copy's source) whose artifacts hash to the tested candidate's. A crash after the
champion moved but before the final record is finished by the next promotion of the model
(``finish_unfinished``), which runs under the same lock. Only records sealed by the service path
(``releasegate.trust``) count as pending or final: a forged "final" promotion neither blocks nor
approves anything.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..datagen import generate, seed_for
from ..decisions import DecisionKind, DecisionOutcome, NewDecision
from ..fingerprint import fingerprint
from ..gates import Dossier, GatePolicy, GateReport
from ..handshake import Approval, ApprovalFields, ApprovalRefused, Handshake, Role, approval_ref, check_approval
from ..psi import psi
from . import context, registry
from .config import ApproverConfig
from .promotion_log import promotion_history


def promotion_subject(flow_run_id: str) -> str:
    return f"promotion:{flow_run_id}"


def exception_subject(model: str, version: str) -> str:
    return f"model:{model}:v{version}"


def current_prod_inputs(rows: int = 5000, today: date | None = None):
    import os

    day = today or context.clock().now().date()
    return generate(rows, seed=seed_for(day, 17), drift=float(os.environ.get("RELEASEGATE_MARKET_DRIFT", "0") or 0))


def training_data(params: dict[str, str]):
    """The data a version was trained on, regenerated from its logged params (seed, rows, drift)."""
    return generate(int(params.get("rows", 4000)), seed=int(params.get("seed", 0)), drift=float(params.get("drift", 0)))


def drift_vs_prod(params: dict[str, str], current=None) -> dict[str, float]:
    """PSI per feature of a version's training data vs today's prod inputs."""
    from ..datagen import FEATURES

    current = current if current is not None else current_prod_inputs()
    psis = psi(training_data(params).X, current.X)
    return dict(zip(FEATURES, (round(float(v), 6) for v in psis), strict=True))


WAIVABLE_GATES = ("kpi_delta",)  # the only gate an exception may waive (never for a worse candidate)


def approved_exception(model: str, version: str, now: datetime, requested_by: str) -> dict[str, Any] | None:
    """The newest exception that still holds for this candidate, re-checked, not trusted from the record.

    Taken only if sealed by the service path, granted for the ``kpi_delta`` gate, unexpired, by someone
    still on the ``exceptions`` allow-list, who is neither the promotion's requester nor the person who
    asked for the exception."""
    log = context.decision_log()
    good, forged = log.trusted(kind="override", subject=exception_subject(model, version))
    log.refuse_forged(forged, "promotion")
    allowed = set(approver_config().exceptions)
    for rec in reversed(good):
        d = rec.details
        if rec.decision_outcome is not DecisionOutcome.override or d.get("gate") not in WAIVABLE_GATES:
            continue
        if not rec.exception_expiry or rec.exception_expiry <= now:
            continue
        if rec.actor not in allowed or rec.actor in (requested_by, d.get("requested_by")):
            continue
        return {
            "decision_id": rec.decision_id,
            "expires_at": rec.exception_expiry.isoformat(),
            "gate": d["gate"],
            "granted_by": rec.actor,
        }
    return None


def build_dossier(model: str, candidate_version: str, policy: GatePolicy, requested_by: str = "") -> Dossier:
    now = context.clock().now()
    staging, prod = registry.model_name("staging", model), registry.model_name("prod", model)
    candidate = registry.version_facts(staging, candidate_version)
    champ_v = registry.alias_version(prod, registry.CHAMPION)
    if champ_v is None and promotion_history(model, "promotion").finals:
        raise RuntimeError(
            f"{prod} has no champion alias, but the decision log holds approved promotions of {model}: the "
            "KPI gate cannot judge a 'first release'. Restore the champion (a rollback, or the alias in MLflow "
            "to the version the log names) and start the promotion again"
        )
    champion = registry.version_facts(prod, champ_v, with_hash=True) if champ_v else None
    p = candidate.params
    drift = drift_vs_prod(p)
    holdout = generate(policy.smoke_rows, seed=int(p.get("seed", 0)) + 1_000_003)
    smoke = registry.smoke_test(f"models:/{staging}/{candidate_version}", holdout.X)
    tags = {**registry.registered_model_tags(staging), **registry.registered_model_tags(prod)}
    monitoring = (context.project_root() / "blocks" / "monitoring_thresholds.yaml").is_file()
    return Dossier(
        model=model,
        candidate=candidate,
        champion=champion,
        archive_version=registry.alias_version(prod, registry.ARCHIVE),
        target_fingerprint=fingerprint(),
        critical=tags.get("critical", "").lower() == "true",
        monitoring_configured=monitoring,
        drift_psi=drift,
        smoke=smoke,
        exception=approved_exception(model, candidate_version, now, requested_by),
        built_at=now,
    )


def approver_config() -> ApproverConfig:
    from .config import load

    return load("approvers")


def record_tech(flow_run_id: str, report: GateReport, report_ref: str, candidate_sha256: str | None = None) -> None:
    context.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.approval,
            decision_outcome=DecisionOutcome.accept if report.tech_gate_pass else DecisionOutcome.reject,
            decision_rationale=f"TECH_GATE_{'PASS' if report.tech_gate_pass else 'FAIL'}: "
            f"gate report {report.outcome.value}",
            subject=promotion_subject(flow_run_id),
            actor="releasegate:gates",
            tech_gate_report_ref=report_ref,
            details={
                "role": "tech",
                "approver": "releasegate:gates",
                "model_name": report.model,
                "candidate_version": report.candidate_version,
                "outcome": report.outcome.value,
                "candidate_sha256": candidate_sha256,
            },
        )
    )


def record_approval(
    flow_run_id: str, h: Handshake, role: Role, a: Approval | None, refusal: str | None, raw: dict[str, Any]
) -> str:
    """Record one approval, or one refusal of an approval: callers pass ``a`` or ``refusal``."""
    if refusal:
        rationale = f"{role.value.upper()} approval refused: {refusal}"
    else:
        assert a is not None  # no refusal: the approval was validated
        rationale = f"{role.value.upper()}_GATE_{'PASS' if a.decision == 'approve' else 'REJECT'} by {a.approver}"
    rec = context.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.approval,
            decision_outcome=DecisionOutcome.reject
            if (refusal or (a and a.decision == "reject"))
            else DecisionOutcome.accept,
            decision_rationale=rationale,
            subject=promotion_subject(flow_run_id),
            actor=str(raw.get("approver") or "<missing>"),
            tech_gate_report_ref=h.tech_report_ref,
            pm_gate_ref=approval_ref(h.pm) if h.pm else None,
            details={
                "role": role.value,
                "approver": str(raw.get("approver") or "<missing>"),
                "model_name": h.model,
                "candidate_version": h.candidate_version,
                "candidate_sha256": h.candidate_sha256,
                "reference": raw.get("reference"),
                "decision": raw.get("decision"),
                "statement": raw.get("statement"),
                "comment": raw.get("comment"),
                "at": a.at.isoformat() if a else None,
                "refusal": refusal,
            },
        )
    )
    return rec.decision_id


def restore_handshake(flow_run_id: str, base: Handshake) -> Handshake:
    """Approvals already given to this promotion run (after its last expired ack), from the decision log.

    Nothing stored is trusted as such: only records sealed by the service path count, and each is
    re-checked with ``check_approval`` in log order (allow-list, four eyes, order) against the current
    handshake, and must be about the same model, version and artifact hash as this run; its time is the
    record's own timestamp. Unsealed approval records are recorded as
    refused forgeries and ignored."""
    log = context.decision_log()
    good, forged = log.trusted(subject=promotion_subject(flow_run_id))
    log.refuse_forged(forged, "promotion")
    h = base.model_copy(update={"pm": None, "risk": None})
    for rec in good:
        d = rec.details
        if rec.decision_kind is DecisionKind.promotion and d.get("reason_code") == "ACK_EXPIRED":
            h = h.model_copy(update={"pm": None, "risk": None})
            continue
        if rec.decision_kind is not DecisionKind.approval or d.get("refusal") or d.get("role") not in ("pm", "risk"):
            continue
        # An approval is about one model, version and binary: parameters changed on the run since (the
        # Prefect API lets anyone edit them) or a replaced staging artifact make it count for nothing.
        about = (d.get("model_name"), str(d.get("candidate_version")), d.get("candidate_sha256"))
        if about != (base.model, str(base.candidate_version), base.candidate_sha256):
            continue
        role = Role(d["role"])
        try:
            fields = ApprovalFields(
                approver=str(d.get("approver") or ""),
                decision=d.get("decision"),
                reference=str(d.get("reference") or ""),
                statement=str(d.get("statement") or ""),
                comment=str(d.get("comment") or ""),
            )
            check_approval(h, role, fields)
        except (ApprovalRefused, ValueError):  # no longer valid (e.g. removed from the allow-list)
            continue
        a = Approval(**fields.model_dump(), role=role, at=rec.decision_timestamp)
        h = h.model_copy(update={role.value: a})
    return h


def tech_pass(flow_run_id: str) -> tuple[str | None, str | None]:
    """(tech gate report ref, candidate artifact hash) of this run's last sealed TECH_GATE_PASS."""
    good, _ = context.decision_log().trusted(kind="approval", subject=promotion_subject(flow_run_id))
    passed = [
        r for r in good if r.details.get("role") == "tech" and r.decision_outcome is DecisionOutcome.accept
    ]
    if not passed:
        return None, None
    return passed[-1].tech_gate_report_ref, passed[-1].details.get("candidate_sha256")


def record_outcome(
    flow_run_id: str, report: GateReport, report_ref: str, outcome: DecisionOutcome, rationale: str, **details: Any
) -> str:
    rec = context.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.promotion,
            decision_outcome=outcome,
            decision_rationale=rationale,
            subject=promotion_subject(flow_run_id),
            actor="releasegate:promotion",
            tech_gate_report_ref=report_ref,
            details={
                "model_name": report.model,
                "candidate_version": report.candidate_version,
                "promotion_outcome": report.outcome.value,
                "measures_plan": report.measures_plan,
                "tech_ready": report.tech_gate_pass,
                "business_approved": False,
                **details,
            },
        )
    )
    return rec.decision_id


def _release_plan(flow_run_id, report, report_ref, h, ack_ref, candidate_sha256):
    model, version = report.model, report.candidate_version
    staging, prod = registry.model_name("staging", model), registry.model_name("prod", model)
    previous = registry.alias_version(prod, registry.CHAMPION)
    rollback_plan = f"archive:{prod}@v{previous}" if previous else f"first-release:remove-champion:{prod}"
    refs = dict(
        tech_gate_report_ref=report_ref,
        pm_gate_ref=approval_ref(h.pm),
        risk_gate_ref=approval_ref(h.risk),
        joint_release_ack_ref=ack_ref,
        rollback_plan_ref=rollback_plan,
    )
    common = {
        "model_name": model,
        "candidate_version": version,
        "staging_model": staging,
        "prod_model": prod,
        "previous_champion": previous,
        "candidate_sha256": candidate_sha256,
        "tech_ready": True,
        "business_approved": True,
        "promotion_outcome": "promote",
    }
    return staging, prod, refs, common


def write_pending(
    flow_run_id: str, report: GateReport, report_ref: str, h: Handshake, ack_ref: str, candidate_sha256: str
):
    """Step 1 of binary promotion: the pending decision, before anything in the registry moves."""
    staging, prod, refs, common = _release_plan(flow_run_id, report, report_ref, h, ack_ref, candidate_sha256)
    return context.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.promotion,
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"promote {staging} v{report.candidate_version} to {prod}: gates, PM and Risk passed "
            "(pending registry)",
            subject=promotion_subject(flow_run_id),
            actor="releasegate:promotion",
            details={**common, "status": "pending"},
            **refs,
        )
    )


def finish_unfinished(model: str) -> list[dict[str, Any]]:
    """Finish every promotion of ``model`` that wrote its pending record but not its final one, if that is
    still what the log and the registry say should happen; otherwise abandon it (a sealed record), and
    put the champion back where the log says it is if the interrupted promotion had already moved it.

    Still valid: written less than the joint ack's validity ago, no sealed rollback or promotion of the
    model after it, and the champion is where the pending left it (its previous champion, or its copy)."""
    from ..handshake import ACK_VALIDITY

    log = context.decision_log()
    history = promotion_history(model, "promotion")
    out = []
    for p in history.pendings:
        if p.decision_id in history.ends:
            continue
        d = p.details
        prod = d["prod_model"]
        version, sha = str(d["candidate_version"]), d["candidate_sha256"]
        copy = registry.find_copy(prod, d["staging_model"], version, sha, p.decision_id)
        champion = registry.alias_version(prod, registry.CHAMPION)
        later = [
            r
            for kind in ("promotion", "rollback")
            for r in log.trusted(kind=kind, since=p.decision_timestamp)[0]
            if r.details.get("model_name") == model and r.details.get("status") == "final"
        ]
        why = None
        if later:
            why = f"a later {later[-1].decision_kind.value} ({later[-1].decision_id}) changed the model since"
        elif context.clock().now() > p.decision_timestamp + ACK_VALIDITY:
            why = "its joint release ack has expired"
        elif champion not in (d.get("previous_champion"), copy):
            why = f"the champion is v{champion}, neither its previous champion nor its copy"
        if why is None:
            out.append(_complete(p, converged=True))
            continue
        restore = d.get("previous_champion") if (copy is not None and champion == copy and not later) else None
        log.append(
            NewDecision(
                decision_kind=DecisionKind.promotion,
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"interrupted promotion {p.decision_id} abandoned: {why}"
                + (f"; champion put back on v{restore}" if restore else ""),
                subject=p.subject,
                actor="releasegate:promotion",
                tech_gate_report_ref=p.tech_gate_report_ref,
                details={
                    **{k: v for k, v in d.items() if k not in ("status", "seal")},
                    "status": "abandoned",
                    "pending_decision_id": p.decision_id,
                    "champion_restored": restore,
                },
            )
        )
        if restore:
            registry.set_alias(prod, registry.CHAMPION, restore)
        out.append({"abandoned": p.decision_id, "reason": why, "champion_restored": restore})
    return out


def binary_promotion(
    flow_run_id: str, report: GateReport, report_ref: str, h: Handshake, ack_ref: str, candidate_sha256: str
) -> dict[str, Any]:
    subject = promotion_subject(flow_run_id)
    history = promotion_history(report.model, "promotion")
    mine = [p for p in history.pendings if p.subject == subject]
    end = history.ends.get(mine[-1].decision_id) if mine else None
    if end is not None:
        if end.details.get("status") != "final":
            raise RuntimeError(f"this promotion already ended {end.details.get('status')} (decision {end.decision_id})")
        return {"prod_version": end.details.get("prod_version"), "decision_id": end.decision_id, "converged": False}
    if mine:  # a previous attempt stopped after its pending record: finish what it started, never copy twice
        return _complete(mine[-1], converged=True)
    pending = write_pending(flow_run_id, report, report_ref, h, ack_ref, candidate_sha256)
    return _complete(pending, converged=False)


def _complete(pending, converged: bool) -> dict[str, Any]:
    """Steps 2 and 3 of binary promotion for a pending record (idempotent: safe to run again)."""
    log = context.decision_log()
    d = pending.details
    staging, prod, version = d["staging_model"], d["prod_model"], str(d["candidate_version"])
    candidate_sha256, previous = d["candidate_sha256"], d.get("previous_champion")
    refs = {
        k: getattr(pending, k)
        for k in ("tech_gate_report_ref", "pm_gate_ref", "risk_gate_ref", "joint_release_ack_ref", "rollback_plan_ref")
    }
    common = {k: v for k, v in d.items() if k not in ("status", "seal")}

    prod_version = registry.find_copy(prod, staging, version, candidate_sha256, pending.decision_id)
    if prod_version is None:
        prod_version = registry.copy_to(staging, version, prod)
        registry.set_tags(prod, prod_version, {"decision_id": pending.decision_id})
    else:
        converged = True
    prod_sha = registry.artifact_sha256(f"models:/{prod}/{prod_version}")
    if prod_sha != candidate_sha256:
        log.append(
            NewDecision(
                decision_kind=DecisionKind.promotion,
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"binary check failed: {prod} v{prod_version} hashes {prod_sha[:12]}, tested "
                f"{staging} v{version} hashed {candidate_sha256[:12]}; aliases not moved",
                subject=pending.subject,
                actor="releasegate:promotion",
                tech_gate_report_ref=refs["tech_gate_report_ref"],
                details={
                    **common,
                    "status": "failed",
                    "pending_decision_id": pending.decision_id,
                    "prod_version": prod_version,
                    "prod_sha256": prod_sha,
                },
            )
        )
        raise RuntimeError(f"artifact hash mismatch between {staging} v{version} and {prod} v{prod_version}")
    registry.set_tags(
        prod,
        prod_version,
        {
            "source_model": staging,
            "source_version": version,
            "decision_id": pending.decision_id,
            "git_sha": report_git_sha(staging, version),
            "artifact_sha256": prod_sha,
        },
    )
    if previous and previous != prod_version:
        registry.set_alias(prod, registry.ARCHIVE, previous)
    registry.set_alias(prod, registry.CHAMPION, prod_version)
    final = log.append(
        NewDecision(
            decision_kind=DecisionKind.promotion,
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"promoted {staging} v{version} as {prod} v{prod_version} (champion); "
            + (f"v{previous} archived" if previous else "first release"),
            subject=pending.subject,
            actor="releasegate:promotion",
            details={
                **common,
                "status": "final",
                "pending_decision_id": pending.decision_id,
                "prod_version": prod_version,
                "prod_sha256": prod_sha,
                "converged": converged,
            },
            **refs,
        )
    )
    return {
        "prod_version": prod_version,
        "decision_id": final.decision_id,
        "pending_decision_id": pending.decision_id,
        "previous_champion": previous,
        "converged": converged,
    }


def report_git_sha(name: str, version: str) -> str:
    return registry.client().get_model_version(name, version).tags.get("git_sha", "unknown")


def _ensure_limit(name: str) -> str:
    """A Prefect global concurrency limit of 1, created when missing and re-activated when someone
    deactivated it in the UI: an inactive limit admits everyone, and releasegate's one-at-a-time rule
    must not depend on a UI toggle. Callers take it with ``concurrency(name, strict=True)``."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as c:
        try:
            limit = c.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                c.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:  # created concurrently
                pass
            limit = c.read_global_concurrency_limit_by_name(name)
        if not limit.active or limit.limit != 1 or (limit.slot_decay_per_second or 0) != 0:
            c.update_global_concurrency_limit(
                name, GlobalConcurrencyLimitUpdate(active=True, limit=1, slot_decay_per_second=0)
            )
    return name


def ensure_model_lock(model: str) -> str:
    """One promotion per model at a time (held for the whole promotion, approvals included)."""
    return _ensure_limit(f"promotion-{model}")


def ensure_alias_lock(model: str) -> str:
    """One alias change per model at a time: the binary step of a promotion and every rollback take it.

    Separate from the promotion lock, which is held while a promotion waits (up to a day) for approvals:
    an emergency rollback must not wait behind that, but it must never interleave with alias moves."""
    return _ensure_limit(f"aliases-{model}")

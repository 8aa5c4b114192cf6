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

A rerun that finds a pending decision without its final one looks for the prod version tagged with that
decision and finishes from there instead of copying again.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..datagen import generate, seed_for
from ..decisions import DecisionKind, DecisionOutcome, NewDecision
from ..fingerprint import fingerprint
from ..gates import Dossier, GatePolicy, GateReport
from ..handshake import Approval, Handshake, Role, approval_ref
from ..psi import psi
from . import context, registry
from .config import ApproverConfig


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


def approved_exception(model: str, version: str, now: datetime) -> dict[str, Any] | None:
    for rec in context.decision_log().query(
        kind="override", subject=exception_subject(model, version), newest_first=True
    ):
        if rec.decision_outcome is DecisionOutcome.override and rec.exception_expiry and rec.exception_expiry > now:
            return {"decision_id": rec.decision_id, "expires_at": rec.exception_expiry.isoformat()}
    return None


def build_dossier(model: str, candidate_version: str, policy: GatePolicy) -> Dossier:
    now = context.clock().now()
    staging, prod = registry.model_name("staging", model), registry.model_name("prod", model)
    candidate = registry.version_facts(staging, candidate_version)
    champ_v = registry.alias_version(prod, registry.CHAMPION)
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
        exception=approved_exception(model, candidate_version, now),
        built_at=now,
    )


def approver_config() -> ApproverConfig:
    from .config import load

    return load("approvers")


def record_tech(flow_run_id: str, report: GateReport, report_ref: str) -> None:
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
            },
        )
    )


def record_approval(
    flow_run_id: str, h: Handshake, role: Role, a: Approval | None, refusal: str | None, raw: dict[str, Any]
) -> str:
    rec = context.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.approval,
            decision_outcome=DecisionOutcome.reject
            if (refusal or (a and a.decision == "reject"))
            else DecisionOutcome.accept,
            decision_rationale=(
                f"{role.value.upper()} approval refused: {refusal}"
                if refusal
                else f"{role.value.upper()}_GATE_{'PASS' if a.decision == 'approve' else 'REJECT'} by {a.approver}"
            ),
            subject=promotion_subject(flow_run_id),
            actor=str(raw.get("approver") or "<missing>"),
            tech_gate_report_ref=h.tech_report_ref,
            pm_gate_ref=approval_ref(h.pm) if h.pm else None,
            details={
                "role": role.value,
                "approver": str(raw.get("approver") or "<missing>"),
                "model_name": h.model,
                "candidate_version": h.candidate_version,
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
    """Approvals already given to this promotion run (after its last expired ack), from the decision log."""
    pm = risk = None
    for rec in context.decision_log().query(subject=promotion_subject(flow_run_id)):
        if rec.decision_kind is DecisionKind.promotion and rec.details.get("reason_code") == "ACK_EXPIRED":
            pm = risk = None
            continue
        if rec.decision_kind is not DecisionKind.approval or rec.details.get("refusal"):
            continue
        role = rec.details.get("role")
        if role in ("pm", "risk") and rec.details.get("at"):
            a = Approval(
                role=Role(role),
                approver=rec.details["approver"],
                decision=rec.details["decision"],
                reference=rec.details["reference"],
                statement=rec.details.get("statement") or "",
                comment=rec.details.get("comment") or "",
                at=datetime.fromisoformat(rec.details["at"]),
            )
            pm, risk = (a, risk) if role == "pm" else (pm, a)
    return base.model_copy(update={"pm": pm, "risk": risk})


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


def binary_promotion(
    flow_run_id: str, report: GateReport, report_ref: str, h: Handshake, ack_ref: str, candidate_sha256: str
) -> dict[str, Any]:
    log = context.decision_log()
    version = report.candidate_version
    subject = promotion_subject(flow_run_id)
    pending = None
    for rec in log.query(kind="promotion", subject=subject):
        if rec.details.get("status") == "pending":
            pending = rec
        elif (
            rec.details.get("status") == "final"
            and pending
            and rec.details.get("pending_decision_id") == pending.decision_id
        ):
            return {"prod_version": rec.details["prod_version"], "decision_id": rec.decision_id, "converged": False}
    if pending is None:
        pending = write_pending(flow_run_id, report, report_ref, h, ack_ref, candidate_sha256)
        prod_version, converged = None, False
    else:  # a previous attempt stopped after its pending record: finish what it started, never copy twice
        prod_version = registry.find_prod_version_for_decision(pending.details["prod_model"], pending.decision_id)
        converged = True
    staging, prod = pending.details["staging_model"], pending.details["prod_model"]
    previous = pending.details.get("previous_champion")
    refs = {
        k: getattr(pending, k)
        for k in ("tech_gate_report_ref", "pm_gate_ref", "risk_gate_ref", "joint_release_ack_ref", "rollback_plan_ref")
    }
    common = {k: v for k, v in pending.details.items() if k != "status"}

    if prod_version is None:
        prod_version = registry.copy_to(staging, version, prod)
        registry.set_tags(prod, prod_version, {"decision_id": pending.decision_id})
    prod_sha = registry.artifact_sha256(f"models:/{prod}/{prod_version}")
    if prod_sha != candidate_sha256:
        log.append(
            NewDecision(
                decision_kind=DecisionKind.promotion,
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"binary check failed: {prod} v{prod_version} hashes {prod_sha[:12]}, tested "
                f"{staging} v{version} hashed {candidate_sha256[:12]}; aliases not moved",
                subject=subject,
                actor="releasegate:promotion",
                tech_gate_report_ref=report_ref,
                details={**common, "status": "failed", "prod_version": prod_version, "prod_sha256": prod_sha},
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
            subject=subject,
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
    try:
        return registry.client().get_model_version(name, version).tags.get("git_sha", "unknown")
    except Exception:
        return "unknown"


def ensure_model_lock(model: str) -> str:
    """A Prefect global concurrency limit of 1 per model: one promotion per model at a time."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    name = f"promotion-{model}"
    with get_client(sync_client=True) as c:
        try:
            c.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                c.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except Exception:  # created concurrently
                c.read_global_concurrency_limit_by_name(name)
    return name

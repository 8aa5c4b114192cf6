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
(``releasegate.store.trust``) count as pending or final: a forged "final" promotion neither blocks nor
approves anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from releasegate import records
from releasegate.adapters.config import ApproverConfig, model_spec
from releasegate.app import App
from releasegate.decisions import DecisionOutcome
from releasegate.policy.gates import Dossier, GatePolicy, GateReport
from releasegate.policy.grants import recorded_grant_problem
from releasegate.policy.handshake import (
    Approval,
    Handshake,
    Role,
    approval_ref,
)
from releasegate.policy.models import Criticality, RiskTier, manifest_field
from releasegate.policy.passkey_approvals import AnySigned
from releasegate.ports import VersionNotFound
from releasegate.services import handshakes
from releasegate.services.drift_measure import measure_drift
from releasegate.services.promotion_log import promotion_history
from releasegate.services.release import promotion_subject


def exception_subject(model: str, version: str) -> str:
    return records.model_version_subject(model, version)


WAIVABLE_GATES = ("kpi_delta",)  # the only gate an exception may waive (never for a worse candidate)


def approved_exception(app: App, model: str, version: str, now: datetime, requested_by: str) -> dict[str, Any] | None:
    """The newest exception that still holds for this candidate, re-checked, not trusted from the record.

    Taken only if sealed by the service path, granted for the ``kpi_delta`` gate, unexpired, by someone
    still on the ``exceptions`` allow-list, who is neither the promotion's requester nor the person who
    asked for the exception."""
    log = app.log
    good, forged = log.trusted(kind="override", subject=exception_subject(model, version))
    log.refuse_forged(forged, "promotion")
    config = approver_config(app, reader="promotion")
    allowed = set(config.exceptions)
    for rec in reversed(good):
        d = rec.details
        if rec.decision_outcome is not DecisionOutcome.override or d.get("gate") not in WAIVABLE_GATES:
            continue
        if not rec.exception_expiry or rec.exception_expiry <= now:
            continue
        if rec.actor not in allowed or rec.actor in (requested_by, d.get("requested_by")):
            continue
        # signed by the granter with the key pinned now, over this subject, ticket and expiry
        if recorded_grant_problem(rec.subject, rec.actor, rec.exception_expiry, d, config.keys) is not None:
            continue
        return {
            "decision_id": rec.decision_id,
            "expires_at": rec.exception_expiry.isoformat(),
            "gate": d["gate"],
            "granted_by": rec.actor,
        }
    return None


def build_dossier(app: App, model: str, candidate_version: str, policy: GatePolicy, requested_by: str = "") -> Dossier:
    now, registry = app.clock.now(), app.registry
    staging, prod = registry.model_name("staging", model), registry.model_name("prod", model)
    try:
        candidate = registry.version_facts(staging, candidate_version)
    except VersionNotFound as exc:
        raise VersionNotFound(
            f"candidate_version: {exc}: give a version of {staging} that registry lists, or log it there first "
            "(with the local stack, `source ~/.releasegate/stack/stack.env` before training, so the version "
            "goes to the stack's MLflow)"
        ) from None
    champ_v = registry.alias_version(prod, registry.CHAMPION)
    if champ_v is None and promotion_history(model, "promotion", app.log).finals:
        raise RuntimeError(
            f"{prod} has no champion alias, but the decision log holds approved promotions of {model}: the "
            "KPI gate cannot judge a 'first release'. Restore the champion (a rollback, or the alias in MLflow "
            "to the version the log names) and start the promotion again"
        )
    champion = registry.version_facts(prod, champ_v, with_hash=True) if champ_v else None
    spec = model_spec(model)
    if spec is not None and spec.current_inputs is not None:  # the model's own data and training profile
        drift, drift_measure, drift_sample = measure_drift(registry, spec, staging, candidate_version, now.date())
    else:  # nothing to compare with: the drift gate fails (closed) and says what to declare
        drift, drift_measure = {}, f"declare {manifest_field(model, 'current_inputs')} in blocks/models.yaml"
        drift_sample = None
    smoke = registry.smoke_test(f"models:/{staging}/{candidate_version}")  # on its logged input_example
    tags = {**registry.registered_model_tags(staging), **registry.registered_model_tags(prod)}
    monitoring = (app.project_root / "blocks" / "monitoring_thresholds.yaml").is_file()
    return Dossier(
        model=model,
        candidate=candidate,
        champion=champion,
        archive_version=registry.alias_version(prod, registry.ARCHIVE),
        environment=registry.environment_facts(staging, candidate_version),
        champion_environment=registry.environment_facts(prod, champ_v) if champ_v else None,
        # critical by the model manifest, or by the registered model's tag (the older way)
        critical=(spec is not None and spec.criticality is Criticality.critical)
        or tags.get("critical", "").lower() == "true",
        monitoring_configured=monitoring,
        drift_psi=drift,
        drift_measure=drift_measure,
        drift_sample=drift_sample,
        smoke=smoke,
        exception=approved_exception(app, model, candidate_version, now, requested_by),
        built_at=now,
    )


def high_risk(model: str) -> bool:
    """Whether the model's manifest entry says ``risk_tier: high`` (its release needs COMPLIANCE_GATE_PASS)."""
    spec = model_spec(model)
    return spec is not None and spec.risk_tier is RiskTier.high


def approver_config(app: App, model: str | None = None, reader: str = "promotion") -> ApproverConfig:
    """The approvers config in force (governed by the decision log, ``services.approvers``), with a role's
    list replaced by the model's own (``models[<name>].approvers.pm`` / ``.risk`` / ``.compliance``) where
    its manifest entry gives one."""
    from releasegate.services.approvers import governed_config

    return handshakes.model_config(governed_config(reader, app), model_spec(model) if model else None)


def owners(model: str, config: ApproverConfig) -> list[str]:
    """The model's owners: the manifest's ``owners`` and the governed config's ``owners[model]`` (an edit
    of the manifest can add owners, never remove a governed one)."""
    return handshakes.owners_of(model, model_spec(model), config)


def staged_by(app: App, model: str, version: str, requested_by: str) -> dict[str, str]:
    """Who staged ``staging.<model>`` v``version`` (never the placeholder ``registry-event``): the
    ``submit_candidate`` caller (sealed retrain records of the version), the version's MLflow user (the
    version's ``user_id``, else its run's), and the person who asked for the promotion."""
    good, _ = app.log.trusted(kind="retrain", subject=f"model:{model}")
    users = app.registry.version_users(app.registry.model_name("staging", model), version)
    return handshakes.staged_by_of(version, good, users, requested_by)


def handshake_base(model: str, version: str, requested_by: str, app: App, **facts: Any) -> Handshake:
    """The handshake of a promotion run before its approvals: who may approve, with which key, and who may
    not (owners, who staged the candidate)."""
    from releasegate.services.approvers import governed_config

    spec, staged = model_spec(model), staged_by(app, model, version, requested_by)
    return handshakes.base_of(model, version, requested_by, governed_config("promotion", app), spec, staged, **facts)


def record_tech(
    app: App,
    flow_run_id: str,
    report: GateReport,
    report_ref: str,
    candidate_sha256: str | None = None,
    figures: Any = None,
) -> None:
    app.log.append(
        records.approval(
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
                # The report itself, so "why was this model held" is answered by the hash-chained log.
                "gate_report": report.as_json(),
                "gate_report_sha256": report.sha256(),
                **({"figures": figures} if figures else {}),
            },
        )
    )


def record_approval(
    flow_run_id: str,
    h: Handshake,
    role: Role,
    a: Approval | None,
    refusal: str | None,
    raw: dict[str, Any],
    signed: AnySigned | None = None,
    *,
    app: App,
) -> str:
    """Record one approval, or one refusal of an approval: callers pass ``a`` or ``refusal``; an accepted
    approval keeps its signed statement, public key and signature (``audit verify`` re-verifies them)."""
    if refusal:
        rationale = f"{role.value.upper()} approval refused: {refusal}"
    else:
        assert a is not None  # no refusal: the approval was validated
        rationale = f"{role.value.upper()}_GATE_{'PASS' if a.decision == 'approve' else 'REJECT'} by {a.approver}"
    rec = app.log.append(
        records.approval(
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
                "gate_report_sha256": h.gate_report_sha256,
                **(signed.record() if signed is not None and refusal is None else {}),
            },
        )
    )
    return rec.decision_id


def restore_handshake(flow_run_id: str, base: Handshake, app: App) -> Handshake:
    """Approvals already given to this promotion run (after its last expired ack), from the decision log.

    Nothing stored is trusted as such: only records sealed by the service path count, and each is
    re-checked with ``check_approval`` in log order (allow-list, four eyes, order) against the current
    handshake, and must be about the same model, version and artifact hash as this run; its time is the
    record's own timestamp. Unsealed approval records are recorded as
    refused forgeries and ignored."""
    log = app.log
    good, forged = log.trusted(subject=promotion_subject(flow_run_id))
    log.refuse_forged(forged, "promotion")
    return handshakes.restore(flow_run_id, base, good)


def current_rules(app: App, h: Handshake) -> Handshake:
    """``h`` with who may approve, with which key, and who may not, as they stand now (an approval is
    judged by the governed config in force when it arrives, which ``audit verify`` checks too)."""
    now = handshake_base(h.model, h.candidate_version, h.requested_by, app)
    return h.model_copy(update={k: getattr(now, k) for k in ("allow_lists", "keys", "passkeys", "owners", "staged_by")})


def no_eligible_approver_for(app: App, flow_run_id: str, params: dict[str, Any], role: str | None) -> str | None:
    """For a paused promotion run (``releasegate awaiting``): why nobody can give the awaited approval now
    (every name on the role's list is an owner, staged the candidate, has no pinned key, or approved
    another role), else None."""
    from releasegate.policy.handshake import no_eligible_approver

    if role not in ("pm", "risk", "compliance"):
        return None
    tech_ref, candidate_sha, report_sha = tech_pass(app, flow_run_id)
    base = handshake_base(
        str(params.get("model_name", "?")),
        str(params.get("candidate_version", "?")),
        str(params.get("requested_by", "registry-event")),
        app,
        tech_report_ref=tech_ref,
        tech_pass=tech_ref is not None,
        candidate_sha256=candidate_sha,
        gate_report_sha256=report_sha,
    )
    return no_eligible_approver(restore_handshake(flow_run_id, base, app), Role(role))


def tech_pass(app: App, flow_run_id: str) -> tuple[str | None, str | None, str | None]:
    """(tech gate report ref, candidate artifact hash, gate report hash) of this run's last sealed
    TECH_GATE_PASS: what a signed approval of the run approves."""
    good, _ = app.log.trusted(kind="approval", subject=promotion_subject(flow_run_id))
    passed = handshakes.last_tech_pass(good)
    if passed is None:
        return None, None, None
    d = passed.details
    return passed.tech_gate_report_ref, d.get("candidate_sha256"), d.get("gate_report_sha256")


def record_outcome(
    app: App,
    flow_run_id: str,
    report: GateReport,
    report_ref: str,
    outcome: DecisionOutcome,
    rationale: str,
    **details: Any,
) -> str:
    rec = app.log.append(
        records.promotion(
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
                "gate_report_sha256": report.sha256(),  # the report is in this run's TECH record
                "tech_ready": report.tech_gate_pass,
                "business_approved": False,
                **details,
            },
        )
    )
    return rec.decision_id


def report_git_sha(app: App, name: str, version: str) -> str:
    return app.registry.source_commit(name, version) or "unknown"

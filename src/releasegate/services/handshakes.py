"""A promotion run's handshake from facts already read: the pure half of ``services.promotion``'s
``handshake_base`` and ``restore_handshake``, so one reader can read the facts once for many runs.

``services.promotion`` reads the governed approvers config, the model's manifest entry, who staged the
version and the run's sealed records for one run and builds the handshake here; the console's inbox
(``services.approval_desk``) reads each of them once per request, for every run it lists, and builds
the same handshakes here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from releasegate.decisions import DecisionKind, DecisionOutcome, DecisionRecord
from releasegate.policy.approvers import ApproverConfig
from releasegate.policy.handshake import (
    PLACEHOLDER_REQUESTERS,
    Approval,
    ApprovalFields,
    ApprovalRefused,
    Handshake,
    Role,
    check_approval,
)
from releasegate.policy.models import ModelSpec, RiskTier
from releasegate.policy.passkey_approvals import check_any, from_record_any


def model_config(config: ApproverConfig, spec: ModelSpec | None) -> ApproverConfig:
    """The config in force with a role's list replaced by the model's own (``models[<name>].approvers``)."""
    if spec is None or spec.approvers is None:
        return config
    own = {role: names for role in ("pm", "risk", "compliance") if (names := getattr(spec.approvers, role))}
    return config.model_copy(update=own)


def owners_of(model: str, spec: ModelSpec | None, config: ApproverConfig) -> list[str]:
    """The manifest's ``owners`` and the governed config's ``owners[model]``."""
    return sorted({*(spec.owners if spec is not None else []), *config.owners.get(model, [])})


def staged_by_of(
    version: str, retrains: Iterable[DecisionRecord], version_users: Iterable[str], requested_by: str
) -> dict[str, str]:
    """Who staged the version: the ``submit_candidate`` caller (the model's sealed retrain records of
    the version), the version's MLflow users, the person who asked for the promotion; never a
    placeholder such as ``registry-event``."""
    found: dict[str, str] = {}
    for rec in retrains:
        if str(rec.details.get("version")) == str(version) and rec.decision_outcome is DecisionOutcome.accept:
            found.setdefault(rec.actor.removeprefix("producer:"), "submit_candidate caller")
            if rec.details.get("requested_by"):
                found.setdefault(str(rec.details["requested_by"]), "requested the retrain")
    for who in version_users:
        found.setdefault(who, "MLflow user of the version")
    if requested_by not in PLACEHOLDER_REQUESTERS:
        found.setdefault(requested_by, "requested the promotion")
    return {k: v for k, v in found.items() if k and k not in PLACEHOLDER_REQUESTERS}


def base_of(
    model: str,
    version: str,
    requested_by: str,
    config: ApproverConfig,
    spec: ModelSpec | None,
    staged_by: dict[str, str],
    **facts: Any,
) -> Handshake:
    """The handshake before its approvals; ``config`` is the config in force (``model_config`` applied here)."""
    own = model_config(config, spec)
    return Handshake(
        model=model,
        candidate_version=version,
        requested_by=requested_by,
        allow_lists=own.allow_lists(),
        keys=own.keys,
        passkeys=own.passkeys,
        requires_compliance=spec is not None and spec.risk_tier is RiskTier.high,
        owners=owners_of(model, spec, own),
        staged_by=staged_by,
        **facts,
    )


def last_tech_pass(good: Iterable[DecisionRecord]) -> DecisionRecord | None:
    """The run's last sealed TECH_GATE_PASS among its records."""
    passed = [
        r
        for r in good
        if r.decision_kind is DecisionKind.approval
        and r.details.get("role") == "tech"
        and r.decision_outcome is DecisionOutcome.accept
    ]
    return passed[-1] if passed else None


def approvable_reports(records: list[Any], base: Handshake) -> set[str]:
    """The gate reports (by SHA-256) a restored signed approval of this run may have approved: every
    TECH_GATE_PASS report of the run for the same binary. A run re-evaluates its gates after a deferral
    (a freeze) or an expired joint ack, and the drift gate measures PSI on the newest data each time, so
    the reports differ in their measurements; the approvals stay bound to this run, model, version and
    binary (each passed the gates), and an expired joint ack still sends them back to the approvers."""
    return {
        str(r.details.get("gate_report_sha256"))
        for r in records
        if r.decision_kind is DecisionKind.approval
        and r.details.get("role") == "tech"
        and r.decision_outcome is DecisionOutcome.accept
        and r.details.get("candidate_sha256") == base.candidate_sha256
    }


def restore(flow_run_id: str, base: Handshake, good: list[DecisionRecord]) -> Handshake:
    """``base`` with the approvals given to the run (after its last expired ack) among ``good``, the
    run's sealed records in log order; each re-checked (``services.promotion.restore_handshake``)."""
    reports = approvable_reports(good, base)
    cleared: dict[str, Any] = {r.value: None for r in Role}
    h = base.model_copy(update=cleared)
    for rec in good:
        d = rec.details
        if rec.decision_kind is DecisionKind.promotion and d.get("reason_code") == "ACK_EXPIRED":
            h = h.model_copy(update=cleared)
            continue
        business_roles = {r.value for r in h.roles}
        if rec.decision_kind is not DecisionKind.approval or d.get("refusal") or d.get("role") not in business_roles:
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
            signed = from_record_any(d)
            if signed is None or signed.statement.gate_report_sha256 not in reports:
                continue  # unsigned, or signed over a report this run never had
            report_of = h.model_copy(update={"gate_report_sha256": signed.statement.gate_report_sha256})
            check_any(report_of, role, fields, signed.token(), flow_run_id, rec.decision_timestamp)
        except (ApprovalRefused, ValueError, KeyError):  # no longer valid (e.g. off the allow-list, key changed)
            continue
        a = Approval(**fields.model_dump(), role=role, at=rec.decision_timestamp, key_id=signed.key_id)
        h = h.model_copy(update={role.value: a})
    return h

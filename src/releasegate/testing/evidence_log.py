"""A decision log of one governed model, written through the service path, for the evidence pack's
bench and tests: the approvers config trusted once, a promotion of ``credit`` as the promotion flow
records it (TECH with its gate report, PM and RISK approvals signed with Ed25519 keys, then the pending
and final release records, or the gates' hold), and per business date the champion's EOD verdict and
``noise`` deferrals of other runs. Scaffolding: no use case imports it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from releasegate import records
from releasegate.decisions import DecisionOutcome
from releasegate.policy.approvers import ApproverConfig, config_digest
from releasegate.policy.handshake import Role
from releasegate.policy.signatures import ApprovalStatement, public_hex, sign
from releasegate.store.trust import SealedDecisionLog

KEY = bytes(range(32))  # the service key that seals the records
T0 = datetime(2022, 1, 3, 7, tzinfo=UTC)
REFS = {
    "tech_gate_report_ref": "artifact:gates",
    "pm_gate_ref": "PM_GATE_PASS:pm-anna",
    "risk_gate_ref": "RISK_GATE_PASS:risk-carla",
    "joint_release_ack_ref": "JOINT_RELEASE_ACK:x",
    "rollback_plan_ref": "archive:prod.credit@v1",
}


def sealed_log(url: str) -> SealedDecisionLog:
    return SealedDecisionLog(url, key_loader=lambda: KEY)


def trust_config(log: SealedDecisionLog) -> dict[str, Ed25519PrivateKey]:
    """The first approvers config (PM pm-anna, RISK risk-carla, each with a key); returns their keys."""
    keys = {"pm-anna": Ed25519PrivateKey.generate(), "risk-carla": Ed25519PrivateKey.generate()}
    config = ApproverConfig(
        pm=["pm-anna"], risk=["risk-carla"], keys={n: public_hex(k.public_key()) for n, k in keys.items()}
    )
    log.append(
        records.approvers_config(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale="the first approvers config, trusted once",
            subject=records.APPROVERS_CONFIG_SUBJECT,
            actor="ops-admin",
            details={
                "status": "trusted_once",
                "digest": config_digest(config),
                "config": config.model_dump(mode="json"),
            },
        ),
        now=T0,
    )
    return keys


def promote(
    log: SealedDecisionLog,
    keys: dict[str, Ed25519PrivateKey],
    candidate: str,
    prod_version: str,
    at: datetime,
    outcome: str = "promote",
) -> str:
    """One promotion run of ``staging.credit`` ``candidate``: TECH, then (``promote``) PM and RISK signed
    and the pending and final records making ``prod.credit`` ``prod_version`` champion, or (``hold``) the
    gates' hold. Returns the run id."""
    run, report_sha = str(uuid.uuid4()), "c" * 64
    subject = records.promotion_subject(run)
    common = {"model_name": "credit", "candidate_version": candidate}
    log.append(
        records.approval(
            decision_outcome=DecisionOutcome.accept if outcome == "promote" else DecisionOutcome.reject,
            decision_rationale=f"TECH_GATE_{'PASS' if outcome == 'promote' else 'FAIL'}: gate report {outcome}",
            subject=subject,
            actor="releasegate:gates",
            tech_gate_report_ref="artifact:gates",
            details={
                **common,
                "role": "tech",
                "approver": "releasegate:gates",
                "outcome": outcome,
                "gate_report": {"model": "credit", "candidate_version": candidate, "outcome": outcome, "gates": []},
                "gate_report_sha256": report_sha,
                "figures": {"primary_metric": "roc_auc", "candidate_kpi": 0.81, "champion_kpi": 0.78},
            },
        ),
        now=at,
    )
    if outcome != "promote":
        log.append(
            records.promotion(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"{outcome}: gates failed",
                subject=subject,
                actor="releasegate:promotion",
                details={**common, "promotion_outcome": outcome},
                tech_gate_report_ref="artifact:gates",
            ),
            now=at + timedelta(minutes=1),
        )
        return run
    for i, (role, name) in enumerate(((Role.pm, "pm-anna"), (Role.risk, "risk-carla"))):
        signed_at = at + timedelta(minutes=10 + i)
        signed = sign(
            ApprovalStatement(
                model="credit",
                candidate_version=candidate,
                role=role,
                decision="approve",
                approver=name,
                reference=f"REV-{i}",
                gate_report_sha256=report_sha,
                run_id=run,
                signed_at=signed_at,
            ),
            keys[name],
        )
        log.append(
            records.approval(
                decision_outcome=DecisionOutcome.accept,
                decision_rationale=f"{role.value.upper()}_GATE_PASS by {name}",
                subject=subject,
                actor=name,
                tech_gate_report_ref="artifact:gates",
                details={
                    **common,
                    "role": role.value,
                    "approver": name,
                    "decision": "approve",
                    "reference": f"REV-{i}",
                    "gate_report_sha256": report_sha,
                    **signed.record(),
                },
            ),
            now=signed_at,
        )
    release = {**common, "prod_model": "prod.credit", "staging_model": "staging.credit", "prod_version": prod_version}
    for i, status in enumerate(("pending", "final")):
        log.append(
            records.promotion(
                decision_outcome=DecisionOutcome.accept,
                decision_rationale=f"promotion {status}: staging.credit v{candidate} as prod.credit v{prod_version}",
                subject=subject,
                actor="releasegate:promotion",
                details={**release, "status": status, "promotion_outcome": "promote"},
                **REFS,
            ),
            now=at + timedelta(minutes=20 + i),
        )
    return run


def monitor(log: SealedDecisionLog, champion: str, first: date, days: int, noise: int = 0) -> None:
    """``days`` business dates from ``first``: ``noise`` deferrals of other runs, then the EOD verdict of
    ``prod.credit`` ``champion`` (within limits)."""
    for day in range(days):
        business_date = first + timedelta(days=day)
        at = datetime.combine(business_date, datetime.min.time(), UTC) + timedelta(hours=19)
        for k in range(noise):
            log.append(
                records.deferral(
                    decision_outcome=DecisionOutcome.reject,
                    decision_rationale=f"CAPACITY_LIMIT: the pool's slots are held ({day}/{k})",
                    subject=records.flow_run_subject(uuid.uuid4()),
                    actor="releasegate:capacity-gateway",
                    details={"deferral_reason_code": "CAPACITY_LIMIT", "next_evaluation_at": at.isoformat()},
                ),
                now=at + timedelta(seconds=k),
            )
        log.append(
            records.monitoring(
                decision_outcome=DecisionOutcome.accept,
                decision_rationale=f"EOD {business_date} credit: monitor (WITHIN_LIMITS)",
                subject=records.model_subject("credit"),
                actor="releasegate:eod-monitoring",
                details={
                    "model_name": "credit",
                    "business_date": business_date.isoformat(),
                    "action": "monitor",
                    "reason_code": "WITHIN_LIMITS",
                    "champion": {
                        "version": champion,
                        "stage": "full",
                        "max_psi": 0.02 + (day % 7) / 100,
                        "metric_drop": 0.001,
                    },
                    "breached": [],
                },
            ),
            now=at + timedelta(hours=3),
        )


def seed(url: str, days: int, noise: int) -> SealedDecisionLog:
    """The bench's log: the config, ``credit`` v3 promoted as prod v2 on 2022-01-03, then ``days``
    business dates of its monitoring with ``noise`` other records each."""
    log = sealed_log(url)
    keys = trust_config(log)
    promote(log, keys, "3", "2", T0 + timedelta(minutes=1))
    monitor(log, "2", date(2022, 1, 3), days, noise)
    return log

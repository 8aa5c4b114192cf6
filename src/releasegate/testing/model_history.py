"""A governed model's history written through the service path (sealed records), for the model pages'
tests, bench and screenshots: a retrain and a promotion making v1 champion, then one EOD verdict a
business date with the measures ``services.eod`` records (KPI against its baseline, PSI per feature,
missing values, failures, latency, each check with its threshold); a drift spike that asks for a
retrain, the retrained v2 promoted, a KPI drop that rolls back to v1, a held promotion of v3 and an
exception granted for it. Scaffolding: no use case imports it."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from releasegate import records
from releasegate.decisions import DecisionOutcome
from releasegate.store.trust import SealedDecisionLog

FEATURES = ("age", "income", "debt_ratio", "tenure", "utilisation")
REFS = {
    "tech_gate_report_ref": "artifact:gates",
    "pm_gate_ref": "PM_GATE_PASS:pm-anna",
    "risk_gate_ref": "RISK_GATE_PASS:risk-carla",
    "joint_release_ack_ref": "JOINT_RELEASE_ACK:x",
    "rollback_plan_ref": "archive:prod",
}
BASELINE, MAX_DROP, MAX_PSI, MAX_MISSING, MAX_FAILURES, MAX_P95 = 0.80, 0.05, 0.2, 0.05, 0.01, 250.0


@dataclass(frozen=True)
class History:
    """What ``seed_model`` wrote: the business dates of the retrain and the rollback verdicts."""

    model: str
    first: date
    days: int
    retrain_day: date
    rollback_day: date
    held_version: str


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour)


def promote(
    log: SealedDecisionLog, model: str, candidate: str, prod: str, at: datetime, outcome: str = "promote"
) -> str:
    """One promotion run: TECH (and, promoted, PM and RISK) approvals, then the pending and final
    release records (or the gates' hold). Returns the run id."""
    run = str(uuid.uuid4())
    subject, common = records.promotion_subject(run), {"model_name": model, "candidate_version": candidate}
    log.append(
        records.approval(
            decision_outcome=DecisionOutcome.accept if outcome == "promote" else DecisionOutcome.reject,
            decision_rationale=f"TECH_GATE_{'PASS' if outcome == 'promote' else 'FAIL'}: gate report {outcome}",
            subject=subject,
            actor="releasegate:gates",
            tech_gate_report_ref="artifact:gates",
            details={**common, "role": "tech", "approver": "releasegate:gates", "outcome": outcome},
        ),
        now=at,
    )
    if outcome != "promote":
        log.append(
            records.promotion(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"{outcome}: the kpi_delta gate failed",
                subject=subject,
                actor="releasegate:promotion",
                details={**common, "promotion_outcome": outcome},
                tech_gate_report_ref="artifact:gates",
            ),
            now=at + timedelta(minutes=1),
        )
        return run
    for i, (role, name) in enumerate((("pm", "pm-anna"), ("risk", "risk-carla"))):
        log.append(
            records.approval(
                decision_outcome=DecisionOutcome.accept,
                decision_rationale=f"{role.upper()}_GATE_PASS by {name}",
                subject=subject,
                actor=name,
                tech_gate_report_ref="artifact:gates",
                pm_gate_ref="PM_GATE_PASS:pm-anna" if role == "risk" else None,
                details={**common, "role": role, "approver": name, "decision": "approve", "reference": f"REV-{i}"},
            ),
            now=at + timedelta(minutes=10 + i),
        )
    release = {**common, "prod_model": f"prod.{model}", "staging_model": f"staging.{model}", "prod_version": prod}
    for i, status in enumerate(("pending", "final")):
        log.append(
            records.promotion(
                decision_outcome=DecisionOutcome.accept,
                decision_rationale=f"promotion {status}: staging.{model} v{candidate} as prod.{model} v{prod}",
                subject=subject,
                actor="releasegate:promotion",
                details={**release, "status": status, "promotion_outcome": "promote"},
                **REFS,
            ),
            now=at + timedelta(minutes=20 + i),
        )
    return run


def retrain(log: SealedDecisionLog, model: str, version: str, at: datetime, trigger: str) -> None:
    log.append(
        records.retrain(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"registered staging.{model} v{version}: checks passed",
            subject=records.model_subject(model),
            actor="producer:retrain-job",
            details={"trigger": trigger, "version": version, "flow_run_id": str(uuid.uuid4())},
        ),
        now=at,
    )


def verdict(
    log: SealedDecisionLog, model: str, day: date, champion: str, kpi: float, psi: dict[str, float], **extra: float
) -> None:
    """The EOD verdict of ``day`` with its measures; the action follows the thresholds above."""
    drop = (BASELINE - kpi) / BASELINE
    worst = max(psi.values())
    missing, failures, p95 = extra.get("missing", 0.01), extra.get("failures", 0.001), extra.get("p95", 120.0)
    checks = {
        "drift_psi": {"value": worst, "threshold": MAX_PSI, "breached": worst > MAX_PSI},
        "missing_rate": {"value": missing, "threshold": MAX_MISSING, "breached": missing > MAX_MISSING},
        "failure_rate": {"value": failures, "threshold": MAX_FAILURES, "breached": failures > MAX_FAILURES},
        "latency_p95_ms": {"value": p95, "threshold": MAX_P95, "breached": p95 > MAX_P95},
        "metric_drop": {"value": round(drop, 6), "threshold": MAX_DROP, "breached": drop > MAX_DROP},
    }
    rollback = drop > 2 * MAX_DROP
    retrain_now = not rollback and worst > MAX_PSI
    action, reason = (
        ("rollback", "SEVERE_METRIC_DROP")
        if rollback
        else ("plan_retrain", "DRIFT_RETRAIN")
        if retrain_now
        else ("monitor", "WITHIN_LIMITS")
    )
    log.append(
        records.monitoring(
            decision_outcome=DecisionOutcome.reject if rollback else DecisionOutcome.accept,
            decision_rationale=f"EOD {day} {model}: {action} ({reason})",
            subject=records.model_subject(model),
            actor="releasegate:eod-monitoring",
            details={
                "model_name": model,
                "business_date": day.isoformat(),
                "action": action,
                "reason_code": reason,
                "rollback_method": "full" if rollback else None,
                "retrain": retrain_now,
                "urgent": rollback,
                "champion": {"version": champion, "stage": "full", "max_psi": worst, "metric_drop": round(drop, 6)},
                "breached": [name for name, c in checks.items() if c["breached"]],
                "measures": {
                    "kpi": "roc_auc",
                    "kpi_direction": "higher",
                    "kpi_value": round(kpi, 6),
                    "kpi_baseline": BASELINE,
                    "rows": 5000,
                    "failures": round(failures * 5000),
                    "checks": checks,
                    "psi": psi,
                },
            },
        ),
        now=_at(day, 22),
    )


def seed_model(log: SealedDecisionLog, model: str, first: date, days: int = 60, salt: int = 0) -> History:
    """``days`` business dates of ``model`` from ``first`` (at least 12), as the module says."""
    days = max(days, 12)
    retrain_at, rollback_at, held_at = days * 2 // 5, days * 7 // 10, days * 17 // 20
    retrain(log, model, "1", _at(first, 5), "initial")
    promote(log, model, "1", "1", _at(first, 6))
    champion = "1"
    for i in range(days):
        day = first + timedelta(days=i)
        wave = math.sin((i + salt) / 3.0)
        psi = {f: round(0.03 + 0.02 * abs(math.sin(i / (k + 2) + salt)) + 0.005 * k, 4) for k, f in enumerate(FEATURES)}
        kpi = BASELINE + 0.01 * wave
        extra = {"p95": 120.0 + 30 * abs(wave), "missing": 0.01 + 0.005 * abs(wave)}
        if i == retrain_at:
            psi["income"] = 0.31
        if i == rollback_at:
            kpi = BASELINE * 0.86
            extra["failures"] = 0.02
        verdict(log, model, day, champion, kpi, psi, **extra)
        if i == retrain_at:
            retrain(log, model, "2", _at(day + timedelta(days=1), 2), "drift")
            promote(log, model, "2", "2", _at(day + timedelta(days=1), 9))
            champion = "2"
        if i == rollback_at:
            log.append(
                records.rollback(
                    decision_outcome=DecisionOutcome.accept,
                    decision_rationale=f"rolled prod.{model} back from v2 to v1: severe KPI drop on {day}",
                    subject=records.model_subject(model),
                    actor="releasegate:rollback",
                    rollback_plan_ref=f"archive:prod.{model}@v1",
                    details={
                        "previous_version": "2",
                        "new_version": "1",
                        "status": "final",
                        "method": "full",
                        "model_name": model,
                        "trigger": "eod-monitoring",
                    },
                ),
                now=_at(day + timedelta(days=1), 1),
            )
            champion = "1"
        if i == held_at:
            retrain(log, model, "3", _at(day, 3), "schedule")
            promote(log, model, "3", "3", _at(day, 4), outcome="hold")
            log.append(
                records.override(
                    decision_outcome=DecisionOutcome.override,
                    decision_rationale=f"exception for {model} v3: the KPI gate waived for the quarter-end",
                    subject=records.model_version_subject(model, "3"),
                    actor="risk-dan",
                    exception_expiry=_at(day, 4) + timedelta(days=365),
                    details={"gate": "kpi_delta", "ticket_ref": "RISK-42", "requested_by": "owner-olga"},
                ),
                now=_at(day, 5),
            )
    return History(model, first, days, first + timedelta(days=retrain_at), first + timedelta(days=rollback_at), "3")

"""EOD scoring I/O: load champion and challenger from MLflow, score the business date, measure, act.

The policy (canary split, comparison, verdict) is ``releasegate.policy.scoring``; the checks are
``releasegate.policy.monitoring``; the tree is ``releasegate.policy.rollback_tree``. This module reads the registry,
scores, writes the predictions and metrics files, records the monitoring decision and sends the
``monitoring.rollback.requested@v1`` / ``monitoring.retrain.requested@v1`` events through intake (exactly
one rollback and one retrain request per model and business date, whatever retries happen).
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from sklearn.metrics import roc_auc_score

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.adapters.config import load
from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision
from releasegate.policy.monitoring import MonitoringPolicy, MonitoringReport, evaluate, latency_percentiles
from releasegate.policy.rollback_tree import Stage
from releasegate.policy.scoring import (
    Assessment,
    ShadowComparison,
    Verdict,
    canary_mask,
    challenger_stage,
    compare,
    judge,
)
from releasegate.services.promotion import current_prod_inputs, training_data
from releasegate.tools.datagen import FEATURES


class NoChampion(RuntimeError):
    """EOD cannot score: the prod model has no ``champion`` alias."""


class Scored(BaseModel):
    """What one model did on the batch."""

    version: str
    failures: int
    latency_ms: dict[str, float]
    metric: float | None  # ROC AUC on the batch's labels


class EodResult(BaseModel):
    model_name: str
    business_date: date
    rows: int
    champion: Scored
    challenger: Scored | None
    canary_share: float
    canary_rows: int
    served_failures: int
    comparison: ShadowComparison | None
    champion_report: MonitoringReport
    challenger_report: MonitoringReport | None
    champion_assessment: Assessment
    challenger_assessment: Assessment | None
    verdict: Verdict
    predictions_path: str


def _score(model: Any, X: np.ndarray, chunk_rows: int) -> tuple[np.ndarray, int, list[float]]:
    """Score in chunks like a batch server would; a chunk that raises counts all its rows as failed."""
    out = np.full(len(X), np.nan)
    lat: list[float] = []
    for start in range(0, len(X), chunk_rows):
        part = X[start : start + chunk_rows]
        t0 = time.perf_counter()
        try:
            out[start : start + len(part)] = model.predict_proba(part)[:, 1]
        except Exception:
            pass  # counted below as failed rows (NaN)
        lat.append((time.perf_counter() - t0) * 1000)
    return out, int((~np.isfinite(out)).sum()), lat


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    ok = np.isfinite(p)
    if ok.sum() < 2 or len(np.unique(y[ok])) < 2:
        return None
    return float(roc_auc_score(y[ok], p[ok]))


def _champion_stage(tags: dict[str, str]) -> Stage:
    """A champion that came out of the retrain job is in its post-retrain watch period."""
    return Stage.post_retrain if tags.get("retrain_reason") else Stage.full


def score_business_date(
    model: str, day: date, *, rows: int = 5000, canary_share: float = 0.1, chunk_rows: int = 250
) -> EodResult:
    prod = registry.model_name("prod", model)
    aliases = registry.aliases(prod)
    champ_v = aliases.get(registry.CHAMPION)
    if champ_v is None:
        raise NoChampion(
            f"model_name: {prod} has no '{registry.CHAMPION}' alias, so there is nothing to score for {day}; "
            "promote a version first (deployment 'promotion')"
        )
    policy: MonitoringPolicy = load("monitoring-thresholds")
    batch = current_prod_inputs(rows, today=day)
    c_facts, c_proba, champion, c_report = _score_and_check(policy, prod, champ_v, batch, chunk_rows)
    c_assess = _assessment(champ_v, _champion_stage(c_facts.tags), c_report)

    ch_v = aliases.get(registry.CHALLENGER)
    stage = challenger_stage(ch_v is not None and ch_v != champ_v, canary_share)
    served = c_proba.copy()
    mask = np.zeros(rows, dtype=bool)
    challenger = comparison = ch_report = ch_assess = None
    ch_proba = np.full(rows, np.nan)
    if stage is not None and ch_v is not None:
        # The challenger is judged against the champion on the same rows, not against its own baseline.
        _, ch_proba, challenger, ch_report = _score_and_check(
            policy, prod, ch_v, batch, chunk_rows, baseline=champion.metric
        )
        comparison = compare(c_proba, ch_proba, champion.metric, challenger.metric)
        ch_assess = _assessment(ch_v, stage, ch_report)
        if stage is Stage.canary:
            mask = canary_mask(rows, canary_share, f"{prod}:{day.isoformat()}")
            served[mask] = ch_proba[mask]
    verdict = judge(c_assess, ch_assess, policy.tree_thresholds())
    path = _write_outputs(model, day, batch.y, c_proba, ch_proba, served, mask)
    return EodResult(
        model_name=model,
        business_date=day,
        rows=rows,
        champion=champion,
        challenger=challenger,
        canary_share=canary_share if stage is Stage.canary else 0.0,
        canary_rows=int(mask.sum()),
        served_failures=int((~np.isfinite(served)).sum()),
        comparison=comparison,
        champion_report=c_report,
        challenger_report=ch_report,
        champion_assessment=c_assess,
        challenger_assessment=ch_assess,
        verdict=verdict,
        predictions_path=str(path),
    )


_OWN_BASELINE = object()


def _score_and_check(
    policy: MonitoringPolicy, prod: str, version: str, batch, chunk_rows: int, baseline: Any = _OWN_BASELINE
):
    """Score ``batch`` with one prod version and run the monitoring checks on it.

    ``baseline``: the metric its drop is measured against (None: unknown, no drop); by default the
    version's own logged ROC AUC."""
    facts = registry.version_facts(prod, version, with_hash=False)
    proba, failures, lat = _score(registry.load_sklearn(f"models:/{prod}/{version}"), batch.X, chunk_rows)
    scored = Scored(
        version=version, failures=failures, latency_ms=latency_percentiles(lat), metric=_auc(batch.y, proba)
    )
    report = evaluate(
        policy,
        reference=training_data(facts.params).X,
        current=batch.X,
        features=FEATURES,
        rows=len(batch.y),
        failures=failures,
        latency_ms=scored.latency_ms,
        metric_now=scored.metric,
        metric_baseline=facts.metrics.get("roc_auc") if baseline is _OWN_BASELINE else baseline,
    )
    return facts, proba, scored, report


def _assessment(version: str, stage: Stage, report: MonitoringReport) -> Assessment:
    by = {c.name: c for c in report.checks}
    impact = [c for c in (by["failure_rate"], by["schema"]) if c.breached]
    return Assessment(
        version=version,
        stage=stage,
        max_psi=report.max_psi,
        metric_drop=by["metric_drop"].value,
        business_impact=bool(impact),
        impact_detail="; ".join(f"{c.name}: {c.detail}" for c in impact),
    )


def _write_outputs(model, day, y, c_proba, ch_proba, served, mask) -> Path:
    folder = bootstrap.settings().home_dir / "scoring" / model / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "predictions.csv"
    table = np.column_stack([np.arange(len(y)), mask.astype(int), served, c_proba, ch_proba, y])
    np.savetxt(
        path,
        table,
        delimiter=",",
        fmt=["%d", "%d", "%.6f", "%.6f", "%.6f", "%d"],
        header="row,served_by_challenger,served_proba,champion_proba,challenger_proba,label",
        comments="",
    )
    return path


def record_and_act(result: EodResult, flow_run_id: str | None = None) -> dict[str, Any]:
    """Write the monitoring decision, then request the rollback / retrain the verdict asks for."""
    from releasegate.adapters.prefect_runs import send_event

    v = result.verdict
    day = result.business_date.isoformat()
    rec = bootstrap.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.monitoring,
            decision_outcome=DecisionOutcome.reject if v.rollback_method else DecisionOutcome.accept,
            decision_rationale=f"EOD {day} {result.model_name}: {v.action} ({v.reason_code}) - {v.reason}",
            subject=f"model:{result.model_name}",
            actor="releasegate:eod-monitoring",
            details={
                "model_name": result.model_name,
                "business_date": day,
                "action": v.action,
                "reason_code": v.reason_code,
                "rollback_method": v.rollback_method,
                "retrain": v.retrain,
                "urgent": v.urgent,
                "champion": result.champion_assessment.model_dump(mode="json"),
                "challenger": result.challenger_assessment.model_dump(mode="json")
                if result.challenger_assessment
                else None,
                "breached": [c.name for c in result.champion_report.breached],
                "challenger_breached": [c.name for c in result.challenger_report.breached]
                if result.challenger_report
                else [],
                "flow_run_id": flow_run_id,
            },
        )
    )
    out: dict[str, Any] = {"decision_id": rec.decision_id, "action": v.action, "reason_code": v.reason_code}
    now = bootstrap.clock().now().isoformat()
    if v.rollback_method:
        out["rollback"] = send_event(
            {
                "event_id": f"{rec.decision_id}:rollback",
                "event_type": "monitoring.rollback.requested@v1",
                "occurred_at": now,
                "producer": "releasegate:eod-monitoring",
                "idempotency_key": f"monitoring:{result.model_name}:{day}:rollback:{v.rollback_method}",
                "payload": {
                    "model_name": result.model_name,
                    "business_date": day,
                    "method": v.rollback_method,
                    "version": (
                        result.champion_assessment
                        if v.rollback_method == "full"
                        else result.challenger_assessment or result.champion_assessment
                    ).version,
                    "reason_code": v.reason_code,
                    "reason": v.reason,
                },
            }
        ).as_dict()
    if v.retrain:
        drift = v.reason_code.startswith("DRIFT") or v.champion.reason_code.startswith("DRIFT")
        out["retrain"] = send_event(
            {
                "event_id": f"{rec.decision_id}:retrain",
                "event_type": "monitoring.retrain.requested@v1",
                "occurred_at": now,
                "producer": "releasegate:eod-monitoring",
                "idempotency_key": f"monitoring:{result.model_name}:{day}:retrain",
                "payload": {
                    "model_name": result.model_name,
                    "business_date": day,
                    "trigger": "drift" if drift else "kpi",
                    "urgency": "urgent" if v.urgent else "planned",
                    "reason_code": v.reason_code,
                },
            }
        ).as_dict()
    return out


def summary(result: EodResult) -> dict[str, Any]:
    """A compact, JSON-safe view for the flow's return value and artifact."""
    return {
        "model_name": result.model_name,
        "business_date": result.business_date.isoformat(),
        "rows": result.rows,
        "champion_version": result.champion.version,
        "challenger_version": result.challenger.version if result.challenger else None,
        "canary_rows": result.canary_rows,
        "failures": result.served_failures,
        "latency_ms": result.champion.latency_ms,
        "champion_auc": result.champion.metric,
        "challenger_auc": result.challenger.metric if result.challenger else None,
        "max_psi": round(result.champion_report.max_psi, 6),
        "shadow": result.comparison.model_dump(mode="json") if result.comparison else None,
        "action": result.verdict.action,
        "reason_code": result.verdict.reason_code,
        "reason": result.verdict.reason,
        "predictions_path": result.predictions_path,
    }


def markdown(result: EodResult) -> str:
    s = summary(result)
    lines = [f"# EOD {s['business_date']}: prod.{s['model_name']}", "", "| field | value |", "|---|---|"]
    lines += [f"| {k} | {json.dumps(v) if isinstance(v, dict) else v} |" for k, v in s.items()]
    lines += ["", "## Checks (champion)", "", "| check | value | threshold | breached |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {c.value} | {c.threshold} | {c.breached} |" for c in result.champion_report.checks]
    if result.challenger_report:
        lines += ["", "## Checks (challenger vs champion)", "", "| check | value | threshold | breached |"]
        lines += ["|---|---|---|---|"]
        lines += [f"| {c.name} | {c.value} | {c.threshold} | {c.breached} |" for c in result.challenger_report.checks]
    return "\n".join(lines) + "\n"

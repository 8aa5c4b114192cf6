"""EOD scoring I/O: load champion and challenger from MLflow, score the business date, measure, act.

The policy (canary split, comparison, verdict) is ``releasegate.policy.scoring``; the checks are
``releasegate.policy.monitoring``; the tree is ``releasegate.policy.rollback_tree``. This module reads the registry,
scores, writes the predictions and metrics files, records the monitoring decision and sends the
``monitoring.rollback.requested@v1`` / ``monitoring.retrain.requested@v1`` events through intake (exactly
one rollback and one retrain request per model and business date, whatever retries happen).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from releasegate import records
from releasegate.adapters.config import load, model_spec
from releasegate.adapters.data_sources import BusinessBatch, DataSourceError, as_float, load_batch, require_columns
from releasegate.adapters.model_io import Predictor
from releasegate.app import App
from releasegate.decisions import DecisionKind, DecisionOutcome
from releasegate.errors import Failed
from releasegate.policy.metrics import compute
from releasegate.policy.models import ModelSpec, Task, manifest_field
from releasegate.policy.monitoring import MonitoringPolicy, MonitoringReport, evaluate, latency_percentiles
from releasegate.policy.psi import psi_against
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
from releasegate.ports import ModelRegistry
from releasegate.services.drift_measure import PROFILE_MEASURE
from releasegate.services.eod_outputs import write_outputs


class NoChampion(Failed):
    """EOD cannot score: the prod model has no ``champion`` alias."""


class NotGoverned(DataSourceError):
    """The model is not in the manifest the flows read: a retry cannot fix that, unlike a late file."""


class Scored(BaseModel):
    """What one model did on the batch."""

    version: str
    failures: int
    latency_ms: dict[str, float]
    metric: float | None  # the model's primary KPI on the batch's labels (None: no labels that day)
    baseline: float | None = None  # the KPI value its drop was measured against (None: unknown)


class EodResult(BaseModel):
    model_name: str
    business_date: date
    rows: int
    kpi: str
    kpi_direction: str = "higher"  # the primary KPI's better direction (policy.metrics.Direction)
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
    label_source: str | None


def _champion_stage(tags: dict[str, str]) -> Stage:
    """A champion that came out of the retrain job is in its post-retrain watch period."""
    return Stage.post_retrain if tags.get("retrain_reason") else Stage.full


def governed_spec(model: str) -> ModelSpec:
    """The manifest entry EOD, backfill and rollback verification need; a model without one is refused."""
    spec = model_spec(model)
    if spec is None:
        raise NotGoverned(
            model,
            "current_inputs",
            "the model is not in the model manifest the flows read: add it to the file $RELEASEGATE_MODELS "
            "names when it is set (in the worker's environment), else to blocks/models.yaml and run "
            "`releasegate infra up` (which saves it as the releasegate-config/models block)",
        )
    return spec


def score_business_date(
    registry: ModelRegistry,
    model: str,
    day: date,
    *,
    home: Path,
    rows: int | None = None,
    canary_share: float = 0.1,
    chunk_rows: int = 250,
    version: str | None = None,
) -> EodResult:
    """Score ``day``'s inputs (the model's ``current_inputs``; ``rows``: only the first rows) with the
    champion, and the challenger in shadow / canary; measure against the day's labels and judge.

    ``version``: score that prod version alone, in the champion's place (a backfill of a past date); the
    predictions go to ``home``/scoring (RELEASEGATE_HOME)."""
    spec = governed_spec(model)
    prod = registry.model_name("prod", model)
    aliases = registry.aliases(prod) if version is None else {registry.CHAMPION: version}
    champ_v = aliases.get(registry.CHAMPION)
    if champ_v is None:
        raise NoChampion(
            f"model_name: {prod} has no '{registry.CHAMPION}' alias, so there is nothing to score for {day}; "
            "promote a version first (deployment 'promotion')"
        )
    policy: MonitoringPolicy = load("monitoring-thresholds").for_model(spec.drift)  # with the model's drift rule
    batch = load_batch(spec, day, None, rows)
    n = batch.rows
    c_facts, c_pred, champion, c_report = _score_and_check(registry, policy, spec, prod, champ_v, batch, chunk_rows)
    c_assess = _assessment(champ_v, _champion_stage(c_facts.tags), c_report)

    ch_v = aliases.get(registry.CHALLENGER)
    stage = challenger_stage(ch_v is not None and ch_v != champ_v, canary_share)
    served = c_pred.copy()
    mask = np.zeros(n, dtype=bool)
    challenger = comparison = ch_report = ch_assess = None
    ch_pred = np.full(n, np.nan)
    if stage is not None and ch_v is not None:
        # The challenger is judged against the champion on the same rows, not against its own baseline.
        _, ch_pred, challenger, ch_report = _score_and_check(
            registry, policy, spec, prod, ch_v, batch, chunk_rows, baseline=champion.metric
        )
        comparison = compare(
            c_pred,
            ch_pred,
            champion.metric,
            challenger.metric,
            threshold=0.5 if spec.task is Task.classification else None,
            direction=spec.primary_kpi.better,
        )
        ch_assess = _assessment(ch_v, stage, ch_report)
        if stage is Stage.canary:
            mask = canary_mask(n, canary_share, f"{prod}:{day.isoformat()}")
            served[mask] = ch_pred[mask]
    verdict = judge(c_assess, ch_assess, policy.tree_thresholds())
    path = write_outputs(home, spec, day, batch.y, c_pred, ch_pred, served, mask)
    return EodResult(
        model_name=model,
        business_date=day,
        rows=n,
        kpi=spec.primary_kpi.metric,
        kpi_direction=spec.primary_kpi.better.value,
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
        label_source=batch.label_source,
    )


_OWN_BASELINE = object()


def model_inputs(spec: ModelSpec, predictor: Predictor, version: str, batch: BusinessBatch, profile=None):
    """The batch's columns this version reads, in its order (its signature, else its reference profile)."""
    feats = predictor.features(profile.features if profile is not None else None)
    if feats is None:
        raise DataSourceError(
            spec.name,
            "current_inputs",
            f"version {version} names no input columns: log it with a signature of named columns (an "
            "input_example DataFrame) or a reference profile (releasegate.evidence.log_reference_profile)",
        )
    require_columns(spec, "current_inputs", batch.X, feats)
    return feats, batch.X[feats]


def _score_and_check(
    registry: ModelRegistry,
    policy: MonitoringPolicy,
    spec: ModelSpec,
    prod: str,
    version: str,
    batch: BusinessBatch,
    chunk_rows: int,
    baseline: Any = _OWN_BASELINE,
):
    """Score ``batch`` with one prod version and run the monitoring checks on it.

    ``baseline``: the KPI value its drop is measured against (None: unknown, no drop); by default the
    value the version's training run logged."""
    facts = registry.version_facts(prod, version, with_hash=False)
    model = registry.load_pyfunc(f"models:/{prod}/{version}")
    predictor = Predictor(
        model, f"models:/{prod}/{version}", spec.prediction, field=manifest_field(spec.name, "predict")
    )
    profile = registry.reference_profile(prod, version)
    feats, X = model_inputs(spec, predictor, version, batch, profile)
    pred, failures, lat = predictor.score(X, chunk_rows)
    kpi = spec.primary_kpi.metric
    value = None
    if batch.y is not None:
        value = compute(kpi, batch.y, pred)
        value = value if np.isfinite(value) else None
    base = facts.metrics.get(kpi) if baseline is _OWN_BASELINE else baseline
    scored = Scored(
        version=version,
        failures=failures,
        latency_ms=latency_percentiles(lat),
        metric=value,
        baseline=float(base) if isinstance(base, int | float) else None,
    )
    drift = None
    if profile is not None:  # PSI against the bins logged at training: the training set is never re-read
        require_columns(spec, "current_inputs", batch.X, profile.features)
        values = psi_against(profile, as_float(batch.X[profile.features]))
        drift = {f: float(v) for f, v in zip(profile.features, values, strict=True)}
    report = evaluate(
        policy,
        profile=profile,
        drift=drift,
        drift_missing=PROFILE_MEASURE,
        current=as_float(X),
        features=feats,
        rows=batch.rows,
        failures=failures,
        latency_ms=scored.latency_ms,
        metric_now=scored.metric,
        metric_baseline=base,
        metric_direction=spec.primary_kpi.better,
    )
    return facts, pred, scored, report


def verify_on_day(
    registry: ModelRegistry, model: str, version: str, day: date, chunk_rows: int = 250
) -> dict[str, Any]:
    """Score ``day``'s inputs with prod ``version`` (a rollback's restored version): rows, failures, the
    KPI on the day's labels. Never raises: a data or model problem is a failed check that says why."""
    try:
        spec = governed_spec(model)
        prod = registry.model_name("prod", model)
        policy: MonitoringPolicy = load("monitoring-thresholds")
        batch = load_batch(spec, day, None)
        uri = f"models:/{prod}/{version}"
        predictor = Predictor(registry.load_pyfunc(uri), uri, spec.prediction, field=manifest_field(model, "predict"))
        _, X = model_inputs(spec, predictor, version, batch, registry.reference_profile(prod, version))
        pred, failures, lat = predictor.score(X, chunk_rows)
    except Exception as exc:  # noqa: BLE001 - reported as the failed verification it is
        return {"ok": False, "business_date": day.isoformat(), "failure_rate": 1.0, "error": str(exc)[:500]}
    rate = failures / batch.rows
    value = compute(spec.primary_kpi.metric, batch.y, pred) if batch.y is not None else None
    return {
        "ok": rate <= policy.max_failure_rate,
        "business_date": day.isoformat(),
        "rows": batch.rows,
        "failures": failures,
        "failure_rate": round(rate, 6),
        "latency_ms": latency_percentiles(lat),
        "kpi": spec.primary_kpi.metric,
        "value": value if value is not None and np.isfinite(value) else None,
    }


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
        **report.drift_for_tree(),
    )


def measures_of(result: EodResult) -> dict[str, Any]:
    """What the champion measured on the day, as the monitoring record keeps it for the model pages
    (``services.model_pages``): the KPI (its direction and baseline), each check with its threshold,
    the PSI of every feature, rows and failures."""
    c = result.champion
    return {
        "kpi": result.kpi,
        "kpi_direction": result.kpi_direction,
        "kpi_value": c.metric,
        "kpi_baseline": c.baseline,
        "rows": result.rows,
        "failures": c.failures,
        "checks": {
            k.name: {"value": k.value, "threshold": k.threshold, "breached": k.breached}
            for k in result.champion_report.checks
        },
        "psi": {f: round(float(v), 6) for f, v in result.champion_report.psi.items() if np.isfinite(v)},
    }


def record_and_act(app: App, result: EodResult, flow_run_id: str | None = None) -> dict[str, Any]:
    """Write the monitoring decision, then request the rollback / retrain the verdict asks for."""
    from releasegate.adapters.prefect_runs import send_event
    from releasegate.services.rollback_requests import record_request

    v = result.verdict
    day = result.business_date.isoformat()
    rec = _recorded_by_this_run(app.log, result, flow_run_id) or app.log.append(
        records.monitoring(
            decision_outcome=DecisionOutcome.reject if v.rollback_method else DecisionOutcome.accept,
            decision_rationale=f"EOD {day} {result.model_name}: {v.action} ({v.reason_code}) - {v.reason}",
            subject=records.model_subject(result.model_name),
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
                "measures": measures_of(result),
            },
        )
    )
    out: dict[str, Any] = {"decision_id": rec.decision_id, "action": v.action, "reason_code": v.reason_code}
    now = app.clock.now().isoformat()
    if v.rollback_method:
        acts_on = (
            result.champion_assessment
            if v.rollback_method == "full"
            else result.challenger_assessment or result.champion_assessment
        ).version
        out["rollback"] = send_event(
            app,
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
                    "version": acts_on,
                    "reason_code": v.reason_code,
                    "reason": v.reason,
                },
            },
        ).as_dict()
        if out["rollback"].get("flow_run_id"):  # the sealed request the rollback run must carry out
            request = record_request(
                rec,
                method=v.rollback_method,
                champion=result.champion_assessment.version,
                version=acts_on,
                flow_run_id=out["rollback"]["flow_run_id"],
                ports=app.ports,
            )
            out["rollback"]["request_decision_id"] = request.decision_id if request else None
    if v.retrain:
        drift = v.reason_code.startswith("DRIFT") or v.champion.reason_code.startswith("DRIFT")
        out["retrain"] = send_event(
            app,
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
            },
        ).as_dict()
    return out


def _recorded_by_this_run(log: Any, result: EodResult, flow_run_id: str | None) -> Any:
    """The monitoring decision an earlier attempt of this very flow run wrote with the same verdict, if any.

    A Prefect retry keeps the flow run id and runs the whole flow again: when the first attempt recorded
    its verdict and then failed (say the rollback deployment was missing), the retry must send the
    requests under that same decision instead of writing a second one for the same model and date. A
    different verdict (the champion changed meanwhile) is a new judgement and is recorded."""
    if flow_run_id is None:
        return None
    v, day = result.verdict, result.business_date.isoformat()
    # sealed records only: a note written with `decisions add` must not lend its id to the requests
    mine, _ = log.trusted(
        kind=DecisionKind.monitoring, subject=f"model:{result.model_name}", newest_first=True, limit=50
    )
    for rec in mine:
        d = rec.details
        if d.get("flow_run_id") == flow_run_id and d.get("business_date") == day:
            same = (d.get("action"), d.get("reason_code"), d.get("rollback_method"), d.get("retrain")) == (
                v.action,
                v.reason_code,
                v.rollback_method,
                v.retrain,
            )
            same = same and (d.get("champion") or {}).get("version") == result.champion_assessment.version
            return rec if same else None
    return None

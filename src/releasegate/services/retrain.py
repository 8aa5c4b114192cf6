"""Retrain I/O: the signals the retrain gateway needs, read from MLflow and the model's own data.

Drift: the newest current inputs (the manifest's ``current_inputs``) against the champion's logged
reference profile, judged by EOD's rule (only PSI beyond the sampling noise of the rows counts); KPI
drop: the champion's primary KPI on today's labelled inputs against the value its training run logged,
in the KPI's own direction. A model without data sources gives neither signal."""

from __future__ import annotations

from releasegate.adapters.config import load, model_spec
from releasegate.clock import Clock
from releasegate.policy.drift import judge
from releasegate.policy.metrics import relative_drop
from releasegate.policy.monitoring import MonitoringPolicy
from releasegate.policy.retrain import RetrainSignals, RetrainTrigger
from releasegate.ports import ModelRegistry
from releasegate.services.drift_measure import measure_drift
from releasegate.services.eod import verify_on_day


def signals(
    registry: ModelRegistry,
    clock: Clock,
    model: str,
    trigger: RetrainTrigger,
    source_environment: str | None = None,
) -> RetrainSignals:
    prod = registry.model_name("prod", model)
    champ = registry.alias_version(prod, registry.CHAMPION)
    if champ is None:
        return RetrainSignals(trigger=trigger, has_champion=False, source_environment=source_environment)
    facts = registry.version_facts(prod, champ, with_hash=False)
    spec = model_spec(model)
    drift: dict[str, float] = {}
    beyond: dict[str, float] | None = None
    drop = None
    if spec is not None and spec.current_inputs is not None:
        today = clock.now().date()
        drift, _, sample = measure_drift(registry, spec, prod, champ, today)
        if sample is not None:  # EOD's noise allowance: only PSI beyond the sampling noise of the rows
            rule: MonitoringPolicy = load("monitoring-thresholds")
            rule = rule.for_model(spec.drift)  # its bands are the retrain policy's: no threshold here
            beyond = judge(drift, sample, 0.0, rule.false_alarm_rate, rule.min_rows).drifted
        on_day = verify_on_day(registry, model, champ, today)
        kpi = spec.primary_kpi
        drop = relative_drop(on_day.get("value"), facts.metrics.get(kpi.metric), kpi.better)
    started = registry.run_started(facts.run_id) if facts.run_id else None
    age = (clock.now() - started).total_seconds() / 86400 if started else None
    return RetrainSignals(
        trigger=trigger,
        has_champion=True,
        psi=drift,
        psi_beyond_noise=beyond,
        kpi_drop=drop,
        days_since_refit=age,
        source_environment=source_environment,
    )

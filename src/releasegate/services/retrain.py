"""Retrain I/O: the signals the retrain gateway needs, read from MLflow and generated prod inputs."""

from __future__ import annotations

from datetime import UTC, datetime

from sklearn.metrics import roc_auc_score

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.policy.metrics import Direction, relative_drop
from releasegate.policy.retrain import RetrainSignals, RetrainTrigger
from releasegate.services.promotion import current_prod_inputs, drift_vs_prod


def signals(model: str, trigger: RetrainTrigger, source_environment: str | None = None) -> RetrainSignals:
    prod = registry.model_name("prod", model)
    champ = registry.alias_version(prod, registry.CHAMPION)
    if champ is None:
        return RetrainSignals(trigger=trigger, has_champion=False, source_environment=source_environment)
    facts = registry.version_facts(prod, champ, with_hash=False)
    current = current_prod_inputs()
    drift = drift_vs_prod(facts.params, current)
    model_obj = registry.load_sklearn(f"models:/{prod}/{champ}")
    auc_now = float(roc_auc_score(current.y, model_obj.predict_proba(current.X)[:, 1]))
    baseline = facts.metrics.get("roc_auc")
    drop = relative_drop(auc_now, baseline, Direction.higher_better)  # the demo model's KPI, roc_auc
    run = registry.client().get_run(facts.run_id) if facts.run_id else None
    started = datetime.fromtimestamp(run.info.start_time / 1000, UTC) if run else None
    age = (bootstrap.clock().now() - started).total_seconds() / 86400 if started else None
    return RetrainSignals(
        trigger=trigger,
        has_champion=True,
        psi=drift,
        kpi_drop=drop,
        days_since_refit=age,
        source_environment=source_environment,
    )

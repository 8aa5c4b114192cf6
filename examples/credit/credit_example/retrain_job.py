"""``retrain-job``: train a new candidate on generated data, register it in ``staging.<model>`` with its
lineage, check it, set the ``staging`` alias and announce "staging version validated".

Goes through the capacity gateway like any other run. The training data (seeded by business date, with
the current market's drift) is regenerated read-only from its parameters, so the promotion's drift gate
can rebuild it exactly. The announcement goes through event intake with the same idempotency key the
MLflow webhook and the registry watcher use for the alias change, so one promotion run starts.
"""

from prefect import get_run_logger
from prefect.runtime import flow_run

from credit_example.data import generate, seed_for
from credit_example.training import log_and_register, train
from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.adapters.prefect_flows import governed_flow
from releasegate.adapters.prefect_gate import gate_current_run
from releasegate.adapters.prefect_runs import send_event
from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision

DEPLOYMENT = "retrain-job"
MIN_AUC = 0.6


@governed_flow(DEPLOYMENT, log_prints=True)
def retrain_job(
    model_name: str, reason: str = "requested", rows: int = 4000, seed: int | None = None, drift: float | None = None
) -> dict:
    import os

    logger = get_run_logger()
    # A retry of a run whose candidate already failed its checks must not train and register again
    # (same seed, same result): it ends at once with the first attempt's decision.
    for rec in bootstrap.decision_log().query(kind="retrain", subject=f"model:{model_name}", newest_first=True):
        if rec.details.get("flow_run_id") == str(flow_run.id) and rec.decision_outcome is DecisionOutcome.reject:
            raise RuntimeError(f"this run's candidate already failed its checks (decision {rec.decision_id})")
    gate_current_run(DEPLOYMENT)
    now = bootstrap.clock().now()
    day = now.date()
    seed = seed if seed is not None else seed_for(day, 3)
    drift = drift if drift is not None else float(os.environ.get("RELEASEGATE_MARKET_DRIFT", "0") or 0)
    logger.info("training %s on %d rows (seed %d, drift %.2f): %s", model_name, rows, seed, drift, reason)
    result = train(seed=seed, rows=rows, drift=drift)
    version = log_and_register(
        result,
        model_name,
        "staging",
        data_timestamp=day.isoformat(),
        extra_tags={"retrain_reason": reason, "retrain_flow_run": str(flow_run.id)},
    )
    staging = registry.model_name("staging", model_name)
    smoke = registry.smoke_test(f"models:/{staging}/{version}", generate(200, seed=seed + 1_000_003, drift=drift).X)
    ok = smoke["ok"] and result.metrics["roc_auc"] >= MIN_AUC
    rec = bootstrap.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.retrain,
            decision_outcome=DecisionOutcome.accept if ok else DecisionOutcome.reject,
            decision_rationale=(
                f"registered {staging} v{version} (roc_auc {result.metrics['roc_auc']:.4f})"
                + ("; validated" if ok else f"; checks failed: smoke {smoke}, min roc_auc {MIN_AUC}")
            ),
            subject=f"model:{model_name}",
            actor="releasegate:retrain-job",
            details={
                "trigger": reason,
                "version": version,
                "metrics": result.metrics,
                "smoke": smoke,
                "flow_run_id": str(flow_run.id),
            },
        )
    )
    if not ok:
        raise RuntimeError(f"{staging} v{version} failed its checks (decision {rec.decision_id})")
    registry.set_alias(staging, registry.STAGING, version)
    announced = send_event(
        {
            "event_id": f"retrain-job:{flow_run.id}",
            "event_type": "registry.staging_version.validated@v1",
            "occurred_at": now.isoformat(),
            "producer": "retrain-job",
            "idempotency_key": f"staging-validated:{model_name}:{version}",
            "payload": {"model_name": model_name, "version": version},
        }
    )
    logger.info("%s v%s validated; promotion: %s %s", staging, version, announced.status, announced.flow_run_id)
    return {
        "version": version,
        "metrics": result.metrics,
        "decision_id": rec.decision_id,
        "promotion": announced.as_dict(),
    }

"""``retrain-job``: the credit team's retrain deployment, called by releasegate's retrain gateway as a child
run. Trains a new candidate on the business date's generated data, registers it in ``staging.<model>``
with its lineage, checks it (holdout AUC, finite scores) and hands it to releasegate with
``releasegate.submit_candidate``, which records the verdict and, for a good candidate, sets the
``staging`` alias and announces "staging version validated" (one promotion run starts).

Governed by ``releasegate.governed`` (runtime policy from the prefect.yaml that declares ``retrain-job``,
behind the capacity gateway). Uses only releasegate's public API.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import numpy as np
from prefect import get_run_logger
from prefect.runtime import flow_run

import releasegate
from credit_example.data import seed_for
from credit_example.training import log_and_register, train

DEPLOYMENT = "retrain-job"
MIN_AUC = 0.6


@releasegate.governed(DEPLOYMENT, gate=True, log_prints=True)
def retrain_job(
    model_name: str, reason: str = "requested", rows: int = 4000, seed: int | None = None, drift: float | None = None
) -> dict:
    logger = get_run_logger()
    run_id = str(flow_run.id)
    # A retry of a run whose candidate already failed its checks must not train and register again
    # (same seed, same result): it ends at once with the first attempt's decision.
    failed = releasegate.already_rejected(model_name, run_id)
    if failed:
        raise RuntimeError(f"this run's candidate already failed its checks (decision {failed})")
    day = (flow_run.scheduled_start_time or datetime.now(UTC)).date()  # the business date it trains for
    seed = seed if seed is not None else seed_for(day, 3)
    drift = drift if drift is not None else float(os.environ.get("RELEASEGATE_MARKET_DRIFT", "0") or 0)
    logger.info("training %s on %d rows (seed %d, drift %.2f): %s", model_name, rows, seed, drift, reason)
    result = train(seed=seed, rows=rows, drift=drift)
    version = log_and_register(
        result,
        model_name,
        "staging",
        data_timestamp=day.isoformat(),
        extra_tags={"retrain_reason": reason, "retrain_flow_run": run_id},
    )
    scores = result.model.predict_proba(result.holdout.X)[:, 1]
    ok = bool(np.isfinite(scores).all()) and result.metrics["roc_auc"] >= MIN_AUC
    summary = f"roc_auc {result.metrics['roc_auc']:.4f}" + (
        "; validated" if ok else f"; checks failed: min roc_auc {MIN_AUC}, finite scores on the holdout"
    )
    out = releasegate.submit_candidate(
        model_name,
        version,
        producer="credit:retrain-job",
        checks_ok=ok,
        summary=summary,
        flow_run_id=run_id,
        details={"trigger": reason, "metrics": result.metrics},
    )
    if not ok:
        raise RuntimeError(f"staging.{model_name} v{version} failed its checks (decision {out['decision_id']})")
    logger.info("staging.%s v%s validated; promotion: %s", model_name, version, out["promotion"])
    return {"version": version, "metrics": result.metrics, "decision_id": out["decision_id"], **out}

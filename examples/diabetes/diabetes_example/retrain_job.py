"""``diabetes-retrain``: the team's own retrain deployment, called by releasegate's retrain gateway as a
child run (manifest: ``retrain.deployment: diabetes-retrain/diabetes-retrain``). Governed: its runtime
policy comes from this project's prefect.yaml, and ``gate=True`` puts it behind the capacity gateway."""

from __future__ import annotations

import releasegate
from diabetes_example.training import train_and_log


@releasegate.governed("diabetes-retrain", gate=True, log_prints=True)
def retrain(reason: str = "requested", alpha: float = 0.01) -> dict:
    version, rmse = train_and_log(alpha=alpha, tags={"retrain_reason": reason})
    print(f"registered staging.diabetes v{version} (rmse {rmse:.2f}) for: {reason}")
    return {"version": version, "rmse": rmse}

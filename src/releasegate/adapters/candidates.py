"""``releasegate.submit_candidate``: how a team's own training or retrain job hands a staging version to
releasegate (the public API is ``releasegate.jobs``, which passes the process's app here).

It records the job's verdict on its candidate as a ``retrain`` decision (accepted when the team's own
checks passed, rejected with what failed otherwise); for an accepted candidate it sets the ``staging``
alias and announces ``registry.staging_version.validated@v1`` through event intake with the idempotency
key ``staging-validated:<model>:<version>`` (the MLflow webhook and the registry watcher use the same
key for the alias change, so one promotion run starts however many announce it). A rejected candidate
moves no alias and starts nothing. ``already_rejected`` lets a retried job end at once instead of training
and registering the same candidate again.
"""

from __future__ import annotations

from typing import Any

from releasegate import records
from releasegate.adapters.mlflow_registry import STAGING
from releasegate.app import App
from releasegate.decisions import DecisionOutcome


def already_rejected(app: App, model: str, flow_run_id: str) -> str | None:
    """The decision id of a candidate this flow run already submitted as failing its checks, else None."""
    for rec in app.log.query(kind="retrain", subject=f"model:{model}", newest_first=True):
        if rec.details.get("flow_run_id") == flow_run_id and rec.decision_outcome is DecisionOutcome.reject:
            return rec.decision_id
    return None


def submit_candidate(
    app: App,
    model: str,
    version: str,
    *,
    producer: str,
    checks_ok: bool,
    summary: str,
    flow_run_id: str | None = None,
    trigger: str = "retrain job",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record the job's verdict on ``staging.<model>`` v``version`` and, when ``checks_ok``, put it up for
    promotion. ``trigger`` says why the job ran (the retrain record's ``trigger``; a ``trigger`` in
    ``details`` wins). Returns ``{"decision_id", "promotion"}`` (the intake result, or None when rejected)."""
    from releasegate.adapters.prefect_runs import send_event

    registry = app.registry
    staging = registry.model_name("staging", model)
    now = app.clock.now()
    rec = app.log.append(
        records.retrain(
            decision_outcome=DecisionOutcome.accept if checks_ok else DecisionOutcome.reject,
            decision_rationale=f"registered {staging} v{version}: {summary}",
            subject=records.model_subject(model),
            actor=producer,
            details={"trigger": trigger, "version": version, "flow_run_id": flow_run_id, **(details or {})},
        )
    )
    if not checks_ok:
        return {"decision_id": rec.decision_id, "promotion": None}
    registry.set_alias(staging, STAGING, version)
    announced = send_event(
        app,
        {
            "event_id": f"{producer}:{flow_run_id or rec.decision_id}",
            "event_type": "registry.staging_version.validated@v1",
            "occurred_at": now.isoformat(),
            "producer": producer,
            "idempotency_key": f"staging-validated:{model}:{version}",
            "payload": {"model_name": model, "version": version},
        },
    )
    return {"decision_id": rec.decision_id, "promotion": announced.as_dict()}

"""``retrain``: the retrain gateway. Registry events, drift, KPI degradation or periodic refit lead here;
the gateway (``releasegate.policy.retrain``) decides, the decision is recorded, and on ``retrain`` the
model's own retrain deployment (``retrain`` in the model manifest, parameters templated; the built-in
``retrain-job`` for a model without one) is called as a sub-run (``run_deployment``, linked as a child
of this run) and awaited. A retrain deployment that is not deployed is refused (recorded) before any
decision or run. A planned retrain (``defer``) schedules the next evaluation of this deployment at the
off-peak slot, once per model and day (idempotency key)."""

from typing import Any

from prefect import get_client, get_run_logger
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.runtime import flow_run
from prefect.states import Scheduled

from releasegate import bootstrap, records
from releasegate.adapters.config import load, model_spec
from releasegate.adapters.prefect_runs import api_url, deployment_exists
from releasegate.decisions import DecisionOutcome
from releasegate.errors import Failed
from releasegate.jobs import governed
from releasegate.policy.models import DEFAULT_RETRAIN_DEPLOYMENT, manifest_field, retrain_call
from releasegate.policy.retrain import RetrainTrigger, retrain_gateway
from releasegate.services.retrain import signals

DEPLOYMENT = "retrain"


class RetrainRefused(Failed):
    """The retrain cannot be started as configured (e.g. the model's retrain deployment is not deployed)."""


OUTCOME = {"retrain": DecisionOutcome.accept, "defer": DecisionOutcome.reject, "no_retrain": DecisionOutcome.reject}


@governed(DEPLOYMENT, log_prints=True)
def retrain(
    model_name: str,
    trigger: RetrainTrigger = RetrainTrigger.manual,
    version: str | None = None,
    source_environment: str | None = None,
    wait_timeout_seconds: int = 3600,
) -> dict[str, Any]:
    logger = get_run_logger()
    app = bootstrap.app()
    now = app.clock.now()
    s = signals(app.registry, app.clock, model_name, RetrainTrigger(trigger), source_environment)
    decision = retrain_gateway(s, load("retrain-policy"), now)
    job, job_params = retrain_call(
        model_spec(model_name),
        {
            "model_name": model_name,
            "version": version or "",
            "trigger": str(trigger),
            "reason": f"{decision.reason_code}: {decision.reason}",
            "reason_code": str(decision.reason_code),
            "business_date": now.date().isoformat(),
        },
    )
    if decision.outcome == "retrain" and not deployment_exists(job):
        # Refused before anything is recorded as decided or started: no retrain decision, no child run.
        field = manifest_field(model_name, "retrain.deployment") if job != DEFAULT_RETRAIN_DEPLOYMENT else "deployment"
        rule = f"{job!r} is not deployed on the Prefect API {api_url()}: deploy it (prefect deploy) or fix the manifest"
        bootstrap.decision_log().append(
            records.refusal(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"retrain of {model_name} refused: {field}: {rule}",
                subject=records.model_subject(model_name),
                actor="releasegate:retrain-gateway",
                details={"field": field, "rule": rule, "flow_run_id": str(flow_run.id)},
            )
        )
        # Raised, not returned as Failed (see adapters/prefect_flows.py: a returned Failed with retries
        # left crashes the run on a worker). The deployment's retry tries again after its delay, when the
        # job may be deployed; a retry that is still refused records that too.
        raise RetrainRefused(f"retrain refused: {field}: {rule}")
    rec = bootstrap.decision_log().append(
        records.retrain(
            decision_outcome=OUTCOME[decision.outcome],
            decision_rationale=f"{decision.outcome} ({decision.reason_code}): {decision.reason}",
            subject=records.model_subject(model_name),
            actor="releasegate:retrain-gateway",
            details={
                "trigger": str(trigger),
                "outcome": decision.outcome,
                "reason_code": decision.reason_code,
                "urgency": decision.urgency,
                "version": version,
                "source_environment": source_environment,
                "max_psi": max(s.psi.values()) if s.psi else None,
                "kpi_drop": s.kpi_drop,
                "days_since_refit": s.days_since_refit,
                "flow_run_id": str(flow_run.id),
                "next_evaluation_at": decision.next_evaluation_at.isoformat() if decision.next_evaluation_at else None,
            },
        )
    )
    logger.info("retrain gateway: %s (%s) - %s", decision.outcome, decision.reason_code, decision.reason)
    out = {"outcome": decision.outcome, "reason_code": decision.reason_code, "decision_id": rec.decision_id}
    if decision.outcome == "defer":
        next_at = decision.next_evaluation_at
        assert next_at is not None  # a planned retrain names its slot
        with get_client(sync_client=True) as c:
            me = c.read_flow_run(flow_run.id)
            nxt = (
                c.create_flow_run_from_deployment(
                    me.deployment_id,
                    parameters={"model_name": model_name, "trigger": str(trigger)},
                    state=Scheduled(scheduled_time=next_at),
                    idempotency_key=f"{DEPLOYMENT}:planned:{model_name}:{next_at.date()}",
                )
                if me.deployment_id
                else None
            )
        return out | {
            "next_evaluation_at": next_at.isoformat(),
            "next_run_id": str(nxt.id) if nxt else None,
        }
    if decision.outcome == "no_retrain":
        return out
    child = run_deployment(
        name=job,  # the model's own retrain deployment (manifest), else the built-in retrain-job
        parameters=job_params,
        timeout=wait_timeout_seconds,
        as_subflow=True,
        idempotency_key=f"retrain-job:{flow_run.id}",
    )
    assert isinstance(child, FlowRun)  # called from a sync flow: the sync implementation ran
    logger.info("%s run %s ended %s", job, child.id, child.state_name)
    if not child.state or not child.state.is_completed():
        raise RuntimeError(f"{job} run {child.id} ended {child.state_name} (decision {rec.decision_id})")
    # The job's own decision record says what it registered (run results are not persisted by default).
    # (A team's own job may record nothing: then "job" is None and the child run is the evidence.)
    done = next(
        (
            r
            for r in app.log.query(kind="retrain", subject=f"model:{model_name}", newest_first=True)
            if r.details.get("flow_run_id") == str(child.id)
        ),
        None,
    )
    return out | {
        "retrain_job_run_id": str(child.id),
        "retrain_deployment": job,
        "job": {"version": done.details.get("version"), "decision_id": done.decision_id} if done else None,
    }

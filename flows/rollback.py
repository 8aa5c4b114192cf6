"""``rollback``: fall back to the last approved version, verify, document.

Started by the EOD monitoring verdict (a ``monitoring.rollback.requested@v1`` event through intake) or
by a person from the Prefect UI / API. A governed flow: its runtime policy from prefect.yaml (retries,
timeout, late-run rule) applies. It does *not* ask the capacity gateway: an emergency rollback must not
wait behind a change freeze or a full critical queue.

* A run that does not carry out a sealed EOD ``rollback_request`` naming it — fresh (the same business
  day, the champion the verdict judged still champion), unchanged and unused — is a manual run
  (``services.rollback_requests``): it follows the manual-run contract against prod (requested_by,
  reason_code ``recovery``, ticket_ref and approved_at), recorded as a ``manual_run`` decision; without
  them it is refused and nothing moves. An event sent with ``releasegate events send`` included.
* It takes the model's alias lock (``aliases-<model>``), the one the binary step of a promotion takes,
  so a rollback never interleaves with a promotion's alias moves.
* The plan (``releasegate.policy.rollback``) refuses, with the field and rule, when no approved version exists;
  the refusal is a decision record and nothing changes in the registry.
"""

from datetime import date, datetime
from functools import partial
from typing import Literal

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run

from releasegate import bootstrap
from releasegate.adapters.prefect_locks import ensure_alias_lock
from releasegate.jobs import governed
from releasegate.policy.manual_runs import decide_manual_run
from releasegate.policy.rollback import RollbackRefused
from releasegate.services.eod import verify_on_day
from releasegate.services.rollback import execute_rollback
from releasegate.services.rollback_requests import Binding, monitoring_request, wait_for_request
from releasegate.slugs import artifact_key


def requested_by_monitoring(run_id: str, parameters: dict) -> Binding:
    """The sealed EOD request this run carries out, or why it is a manual run (the rule is the
    service's: ``services.rollback_requests.monitoring_request``)."""
    ports = bootstrap.ports()
    wait_for_request(run_id, str(parameters.get("model_name")), ports)  # written right after the run
    return monitoring_request(run_id, parameters, ports)


@governed("rollback", log_prints=True)
def rollback(
    model_name: str,
    reason: str,
    requested_by: str,
    trigger: str = "manual",
    method: Literal["full", "canary"] = "full",
    expected_version: str | None = None,
    ticket_ref: str | None = None,
    approved_at: datetime | None = None,
    business_date: date | None = None,
) -> dict:
    """``business_date``: verify the restored version on that day's inputs (the model's
    ``current_inputs``) as well as on its logged ``input_example``."""
    logger = get_run_logger()
    run_id = str(flow_run.id) if flow_run.id else "local"
    log = bootstrap.decision_log()
    parameters = {
        "model_name": model_name,
        "reason": reason,
        "requested_by": requested_by,
        "trigger": trigger,
        "method": method,
        "expected_version": expected_version,
    }
    if business_date is not None:
        parameters["business_date"] = business_date.isoformat()
    binding = requested_by_monitoring(run_id, parameters)
    logger.info("monitoring request: %s", binding.why)
    if binding.request is None:
        trigger = "manual"  # whatever the form said: a person started it
        verdict = decide_manual_run(
            {
                "requested_by": requested_by,
                "reason_code": "recovery",
                "ticket_ref": ticket_ref,
                "approved_at": approved_at,
                "target_environment": "prod",
            },
            subject=f"flow_run:{run_id}",
            actor="releasegate:rollback",
            now=bootstrap.clock().now(),
        )
        manual = log.append(verdict.decision)
        if not verdict.accepted:
            logger.error("%s (decision %s)", manual.decision_rationale, manual.decision_id)
            raise RollbackRefused(
                "manual_run",
                f"{manual.decision_rationale} (decision {manual.decision_id}); not a monitoring-started run: "
                f"{binding.why}",
            )
    try:
        with concurrency(ensure_alias_lock(model_name), occupy=1, strict=True):
            rec = execute_rollback(
                model_name,
                method=method,
                trigger=trigger,
                root_cause=reason,
                requested_by=requested_by,
                expected_version=expected_version,
                business_date=business_date,
                verify_day=partial(verify_on_day, bootstrap.app().registry),
                request_id=binding.request.decision_id if binding.request else None,
                ports=bootstrap.ports(),
            )
    except RollbackRefused as exc:
        logger.error("%s", exc)
        raise
    rows = "\n".join(f"| {k} | {v} |" for k, v in rec.model_dump(mode="json").items())
    create_markdown_artifact(
        markdown=f"# Rollback of prod.{model_name}\n\n| field | value |\n|---|---|\n{rows}\n",
        key=artifact_key("rollback", model_name),
        description=f"rollback prod.{model_name} v{rec.previous_version} -> v{rec.new_version}",
    )
    logger.info(
        "rollback %s: v%s -> v%s in %.2f s (registry %.3f s), verified=%s",
        rec.method,
        rec.previous_version,
        rec.new_version,
        rec.duration_seconds,
        rec.registry_seconds,
        rec.verified,
    )
    return rec.model_dump(mode="json")

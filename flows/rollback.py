"""``rollback``: fall back to the last approved version, verify, document.

Started by the EOD monitoring verdict (a ``monitoring.rollback.requested@v1`` event through intake) or
by a person from the Prefect UI / API. A governed flow: its runtime policy from prefect.yaml (retries,
timeout, late-run rule) applies. It does *not* ask the capacity gateway: an emergency rollback must not
wait behind a change freeze or a full critical queue.

* A run that intake did not create (no sealed ``event`` decision names it) is a manual run: it follows
  the manual-run contract against prod (requested_by, reason_code ``recovery``, ticket_ref and
  approved_at), recorded as a ``manual_run`` decision; without them it is refused and nothing moves.
* It takes the model's alias lock (``aliases-<model>``), the one the binary step of a promotion takes,
  so a rollback never interleaves with a promotion's alias moves.
* The plan (``releasegate.rollback``) refuses, with the field and rule, when no approved version exists;
  the refusal is a decision record and nothing changes in the registry.
"""

from datetime import datetime
from typing import Literal

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run

from releasegate.adapters import context
from releasegate.adapters.prefect_flows import governed_flow
from releasegate.adapters.promotion_ops import ensure_alias_lock
from releasegate.adapters.rollback_ops import execute_rollback
from releasegate.manual_runs import decide_manual_run
from releasegate.rollback import RollbackRefused
from releasegate.slugs import artifact_key


def started_by_intake(run_id: str) -> bool:
    """Whether event intake created this run (a sealed ``event`` decision names it)."""
    good, _ = context.decision_log().trusted(kind="event", subject="deployment:rollback")
    return any(r.details.get("flow_run_id") == run_id for r in good)


@governed_flow("rollback", log_prints=True)
def rollback(
    model_name: str,
    reason: str,
    requested_by: str,
    trigger: str = "manual",
    method: Literal["full", "canary"] = "full",
    expected_version: str | None = None,
    ticket_ref: str | None = None,
    approved_at: datetime | None = None,
) -> dict:
    logger = get_run_logger()
    run_id = str(flow_run.id) if flow_run.id else "local"
    log = context.decision_log()
    if not started_by_intake(run_id):
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
            now=context.clock().now(),
        )
        rec = log.append(verdict.decision)
        if not verdict.accepted:
            logger.error("%s (decision %s)", rec.decision_rationale, rec.decision_id)
            raise RollbackRefused("manual_run", f"{rec.decision_rationale} (decision {rec.decision_id})")
    try:
        with concurrency(ensure_alias_lock(model_name), occupy=1, strict=True):
            rec = execute_rollback(
                model_name,
                method=method,
                trigger=trigger,
                root_cause=reason,
                requested_by=requested_by,
                expected_version=expected_version,
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

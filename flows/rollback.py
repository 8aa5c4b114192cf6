"""``rollback``: fall back to the last approved version, verify, document.

Manual from the Prefect UI (model_name, reason, requested_by) or started by the monitoring decision
tree. Deliberately *not* a governed_flow: an emergency rollback must not wait behind the capacity
gateway (a change freeze or a full critical queue must never delay undoing a bad release).
The plan (``releasegate.rollback``) refuses, with the field and rule, when no approved version exists;
the refusal is a decision record and nothing changes in the registry.
"""

from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed

from releasegate.adapters.rollback_ops import execute_rollback
from releasegate.rollback import RollbackRefused


@flow(name="rollback", log_prints=True)
def rollback(
    model_name: str,
    reason: str,
    requested_by: str,
    trigger: str = "manual",
    method: Literal["full", "canary"] = "full",
    expected_version: str | None = None,
) -> dict:
    logger = get_run_logger()
    try:
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
        return Failed(message=str(exc))
    rows = "\n".join(f"| {k} | {v} |" for k, v in rec.model_dump(mode="json").items())
    create_markdown_artifact(
        markdown=f"# Rollback of prod.{model_name}\n\n| field | value |\n|---|---|\n{rows}\n",
        key=f"rollback-{model_name}",
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

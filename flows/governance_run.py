"""``governance-run``: a manual governance run started from the Prefect UI or ``releasegate govern``.
Its parameters are the manual-trigger contract, so the UI's run form asks for requested_by,
reason_code, ticket_ref and approved_at. The run records a ``manual_run`` decision (accepted or refused
with the field and rule), then audits the decision log's hash chain and the runtime policies in
prefect.yaml, and publishes the result as a markdown artifact.
"""

from datetime import datetime
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.states import Failed, State

from releasegate import bootstrap
from releasegate.jobs import governed
from releasegate.policy.manual_runs import decide_manual_run
from releasegate.policy.runtime_policy import check_deployments, load_prefect_yaml
from releasegate.policy.triggers import Environment, ReasonCode


@governed("governance-run", log_prints=True)
def governance_run(
    requested_by: str,
    reason_code: ReasonCode = ReasonCode.governance_run,
    ticket_ref: str | None = None,
    approved_at: datetime | None = None,
    target_environment: Environment = Environment.dev,
) -> dict[str, Any] | State[Any]:
    logger = get_run_logger()
    log = bootstrap.decision_log()
    run_id = str(flow_run.id) if flow_run.id else "local"
    verdict = decide_manual_run(
        {
            "requested_by": requested_by,
            "reason_code": reason_code,
            "ticket_ref": ticket_ref,
            "approved_at": approved_at,
            "target_environment": target_environment,
        },
        subject=f"flow_run:{run_id}",
        actor="releasegate:governance-run",
        now=bootstrap.clock().now(),
    )
    record = log.append(verdict.decision)
    if not verdict.accepted:
        logger.error("%s (decision %s)", record.decision_rationale, record.decision_id)
        return Failed(message=f"{record.decision_rationale} (decision {record.decision_id})")
    trigger = verdict.trigger
    assert trigger is not None  # accepted

    audit = log.verify()
    _, policy_problems = check_deployments(load_prefect_yaml(bootstrap.project_root() / "prefect.yaml"))
    lines = [
        "# Governance run",
        f"- requested by **{requested_by}** ({trigger.reason_code.value}) against `{trigger.target_environment.value}`",
        f"- decision `{record.decision_id}`",
        f"- decision log: {audit.checked} records, chain "
        + ("intact" if audit.ok else f"**BROKEN** at {audit.first_break}"),
        "- runtime policies: "
        + ("every deployment complete" if not policy_problems else ", ".join(map(str, policy_problems))),
    ]
    create_markdown_artifact(markdown="\n".join(lines), key="governance-run", description="Governance run")
    logger.info("governance run accepted as decision %s; audit %s", record.decision_id, "ok" if audit.ok else "BROKEN")
    return {
        "decision_id": record.decision_id,
        "audit_ok": audit.ok,
        "records_checked": audit.checked,
        "policy_problems": [str(p) for p in policy_problems],
    }

"""``deferral-sweeper``: every minute, escalate deferrals past their SLA, close finished ones, wake capacity
deferrals the gateway would admit now, and open a P1 incident for promotion gate failures nobody
acknowledged within 30 minutes."""

from dataclasses import asdict

from prefect import get_run_logger

from releasegate.adapters.config import load_gateway_config
from releasegate.adapters.prefect_deferrals import sweep
from releasegate.adapters.prefect_flows import governed_flow
from releasegate.services.gate_failures import escalate_unacknowledged


@governed_flow("deferral-sweeper")
def deferral_sweeper() -> dict:
    report = sweep(load_gateway_config())
    incidents = escalate_unacknowledged()
    logger = get_run_logger()
    for i in incidents:
        logger.error("P1 incident %s: gate failure %s unacknowledged", i["incident_decision"], i["gate_failure"])
    for e in report.escalations:
        logger.warning("deferral of %s escalated to %s after %s min", e["flow_run_id"], e["level"], e["waited_minutes"])
    for run_id in report.woken:
        logger.info("woke deferred run %s: the capacity gateway would admit it now", run_id)
    logger.info(
        "%d open deferrals, %d closed, %d escalations, %d woken",
        report.open_deferrals,
        len(report.closed),
        len(report.escalations),
        len(report.woken),
    )
    return asdict(report) | {"gate_failure_incidents": incidents}

"""``deferral-sweeper``: every minute, escalate deferrals past their SLA, close finished ones, wake capacity
deferrals the gateway would admit now, open a P1 incident for promotion gate failures nobody
acknowledged within 30 minutes, notify the people on call of each escalation once
(``services.escalation_notices``), remind a promotion's approvers before its joint release ack expires
(``services.ack_reminders``), retry crashed runs as their runtime policy allows
(``adapters.prefect_crashes``), and once a week review the ended week's scheduling (runs started, frequent
deferrals; ``services.operational_review``)."""

from dataclasses import asdict
from datetime import timedelta

from prefect import get_run_logger

from releasegate import bootstrap
from releasegate.adapters.config import load_gateway_config, model_spec
from releasegate.adapters.prefect_crashes import retry_crashed_runs
from releasegate.adapters.prefect_deferrals import sweep
from releasegate.adapters.prefect_events import emit_event
from releasegate.adapters.prefect_locks import ensure_reminder_lock, hold
from releasegate.adapters.prefect_review import publish_markdown, week_facts_reader
from releasegate.jobs import governed
from releasegate.policy.models import RiskTier
from releasegate.services.ack_reminders import LoggedPromotionRuns, notify_ack_reminders
from releasegate.services.approvers import governed_config
from releasegate.services.escalation_notices import notify_escalations
from releasegate.services.gate_failures import escalate_unacknowledged
from releasegate.services.operational_review import record_weekly_review


@governed("deferral-sweeper")
def deferral_sweeper() -> dict:
    config = load_gateway_config()
    # crashes first: a deferred run the zombie automation marked Crashed is put back before the sweep
    # would close its deferral as ended (and restart its SLA clock at its next evaluation)
    app = bootstrap.app()
    crashes = retry_crashed_runs(app, config)
    report = sweep(app, config)
    incidents = escalate_unacknowledged(app)
    notices = bootstrap.notifications()

    def addressees(which: str) -> list[str]:
        return list(getattr(governed_config("notifications", app), which))

    notify_escalations(notices, addressees, report.escalations, report.storms, incidents, get_run_logger())
    reminded = notify_ack_reminders(
        notices,
        LoggedPromotionRuns(app.log, requires_compliance),
        addressees,
        app.clock.now(),
        timedelta(minutes=app.settings.ack_reminder_lead_minutes),
        serial=lambda: hold(ensure_reminder_lock()),
        logger=get_run_logger(),
    )
    reviewed = record_weekly_review(
        app.log,
        week_facts_reader(config.pool_name, app.store),
        publish_markdown,
        emit_event,
        config.pool_name,
        config.sla_alert_minutes,
        app.clock.now(),
    )
    logger = get_run_logger()
    if reviewed is not None:
        log = logger.error if reviewed.incident is not None else logger.info
        log("operational review: %s", reviewed.review.explanation())
    for i in incidents:
        logger.error("P1 incident %s: gate failure %s unacknowledged", i["incident_decision"], i["gate_failure"])
    for e in report.escalations:
        logger.warning("deferral of %s escalated to %s after %s min", e["flow_run_id"], e["level"], e["waited_minutes"])
    for run_id in report.woken:
        logger.info("woke deferred run %s: the capacity gateway would admit it now", run_id)
    for c in crashes:
        logger.warning("crashed run %s of %s: %s", c.flow_run_id, c.deployment, c.detail)
    logger.info(
        "%d open deferrals, %d closed, %d escalations, %d woken",
        report.open_deferrals,
        len(report.closed),
        len(report.escalations),
        len(report.woken),
    )
    return asdict(report) | {
        "gate_failure_incidents": incidents,
        "ack_reminders": reminded,
        "crashed_runs": [asdict(c) for c in crashes],
        "operational_review": reviewed.record.decision_id if reviewed is not None else None,
    }


def requires_compliance(model: str) -> bool:
    """Whether ``model``'s release needs the COMPLIANCE approval (its manifest's ``risk_tier`` is high)."""
    spec = model_spec(model)
    return spec is not None and spec.risk_tier is RiskTier.high

"""``promotion``: dossier → gates → PM and Risk approvals → joint ack → binary promotion.

Started from the Prefect UI (model name and candidate version) or by the "staging version validated"
event. The state machine is the use case ``releasegate.services.promotion_flow``; this module is its
Prefect shell: the two subflows, the ports of the run (``adapters.prefect_promotion``: approval pauses,
the ``promotion-<model>`` lock, artifacts, events, the release window) and the end of the run as a
Prefect state. Approvals persist in the decision log, so a run deferred by the capacity gateway (a
change freeze before the release) finds them again; an expired joint ack (24 h after the later
approval) is recorded, the gates re-checked and the approvals asked for again.
"""

from typing import Any

from prefect import flow
from prefect.states import Completed, Failed, State

from releasegate import bootstrap
from releasegate.adapters.config import ConfigError, gate_policy_for
from releasegate.adapters.prefect_promotion import Subflows, promotion_ports
from releasegate.jobs import governed
from releasegate.policy.gates import Dossier
from releasegate.policy.gates import execute_gates as evaluate_gates
from releasegate.services.promotion import build_dossier
from releasegate.services.promotion_flow import PromotionEnd, PromotionRequest, dossier_markdown, run_promotion
from releasegate.services.promotion_records import LoggedPromotionRecords

DEPLOYMENT = "promotion"
HELD, REJECTED = "Held", "Rejected"


@flow(name="build-dossier")
def build_dossier_flow(model_name: str, candidate_version: str, requested_by: str = "") -> dict:
    dossier = build_dossier(bootstrap.app(), model_name, candidate_version, gate_policy_for(model_name), requested_by)
    markdown = dossier_markdown(model_name, candidate_version, dossier)
    return {"dossier": dossier.model_dump(mode="json"), "markdown": markdown}  # attached to the promotion run


@flow(name="execute-gates")
def execute_gates(dossier: dict) -> dict:
    d = Dossier.model_validate(dossier)
    report = evaluate_gates(d, gate_policy_for(d.model), bootstrap.clock().now())
    return {"report": report.model_dump(mode="json"), "markdown": report.markdown()}  # attached by the promotion


@governed(DEPLOYMENT, log_prints=True, own_concurrency=True)
def promotion(
    model_name: str,
    candidate_version: str,
    requested_by: str = "registry-event",
    approval_timeout_minutes: int = 1440,
) -> dict[str, Any] | State[Any]:
    app = bootstrap.app()
    settings = app.settings
    ports = promotion_ports(
        app=app,
        deployment=DEPLOYMENT,
        policy=promotion.fn.runtime_policy,
        checks=Subflows(build_dossier_flow, execute_gates),
        records=LoggedPromotionRecords(app),
        clock=bootstrap.live_clock(),
        poll_seconds=settings.approval_poll_seconds,
        cooldown_seconds=settings.approval_cooldown_seconds,
        config_errors=(ConfigError,),
        notifications=bootstrap.notifications(),
    )
    request = PromotionRequest(model_name, candidate_version, requested_by, approval_timeout_minutes)
    return as_state(run_promotion(ports, request))


def as_state(end: PromotionEnd) -> dict[str, Any] | State[Any]:
    """A promotion's end as Prefect shows it: the release's result; ``Completed`` named ``Held`` or
    ``Rejected`` (what the UI's badge and ``releasegate watch`` print; ``watch`` exits 4 / 5), the message
    saying why, for a verdict recorded (Completed, not Failed: the run did its job, nothing is retried,
    and Failed keeps meaning "the run broke"); ``Failed`` when no promotion can follow."""
    if end.kind == "promoted":
        return end.data or {}
    if end.kind == "failed":
        return Failed(message=end.message)
    return Completed(name=HELD if end.kind == "held" else REJECTED, message=end.message, data=end.data)

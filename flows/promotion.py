"""``promotion``: dossier → gates → PM and Risk approvals → joint ack → binary promotion.

Started from the Prefect UI (model name and candidate version) or by the "staging version validated"
event. One promotion per model at a time (a Prefect global concurrency limit ``promotion-<model>``).

Approvals: the run pauses with ``pause_flow_run(wait_for_input=…)``; the Prefect UI shows the approval
form (approver, decision, reference, statement, comment) and ``releasegate approve`` resumes it from a
terminal. Every approval, accepted or refused, is a decision record; a refused approval pauses the run
again for a valid one. Approvals persist in the decision log, so a run deferred by the capacity gateway
(e.g. a change freeze before the release) finds them again; if the joint ack has expired by then (24 h
after the later approval) the run records that, re-checks the gates and asks again.
"""

import uuid
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

from prefect import flow, get_run_logger, pause_flow_run
from prefect.artifacts import create_markdown_artifact
from prefect.concurrency.sync import concurrency
from prefect.events import emit_event
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State
from pydantic import Field

from releasegate import bootstrap
from releasegate.adapters.config import gate_policy_for
from releasegate.adapters.prefect_flows import governed_flow
from releasegate.adapters.prefect_gate import gate_current_run
from releasegate.adapters.prefect_locks import ensure_alias_lock, ensure_model_lock, work_slot
from releasegate.decisions import DecisionOutcome
from releasegate.policy.gates import Dossier, GateReport, PromotionOutcome
from releasegate.policy.gates import execute_gates as evaluate_gates
from releasegate.policy.handshake import Approval, ApprovalFields, ApprovalRefused, Handshake, Role, check_approval
from releasegate.policy.handshake import joint_release_ack as compute_ack
from releasegate.policy.signatures import check_signed, fields_from_token
from releasegate.services.promotion import (
    approver_config,
    build_dossier,
    high_risk,
    record_approval,
    record_outcome,
    record_tech,
    restore_handshake,
)
from releasegate.services.release import binary_promotion, finish_unfinished
from releasegate.slugs import artifact_key

DEPLOYMENT = "promotion"
MAX_APPROVAL_ATTEMPTS = 5


class ApprovalInput(RunInput, ApprovalFields):
    """The approval form shown in the Prefect UI: paste the signed token (the other fields may stay
    empty: the token states them)."""

    role: Literal["pm", "risk", "compliance"] = "pm"
    token: str = Field(
        default="",
        description="Signed approval token: `releasegate approve RUN --role ROLE --by YOU --ref REF --token-only`.",
    )


@flow(name="build-dossier")
def build_dossier_flow(model_name: str, candidate_version: str, requested_by: str = "") -> dict:
    dossier = build_dossier(model_name, candidate_version, gate_policy_for(model_name), requested_by)
    c, ch, env = dossier.candidate, dossier.champion, dossier.environment
    md = "\n".join(
        [
            f"# Dossier: {model_name} v{candidate_version}",
            f"- candidate `{c.name}` v{c.version}: metrics {c.metrics}, data {c.tags.get('data_timestamp', '?')}",
            f"- environment: {env.requirements if env else 0} requirements "
            f"(sha256 {(env.requirements_sha256 or '?')[:16] if env else '?'}), "
            f"commit {((env.source_commit or '?') if env else '?')[:12]}",
            f"- artifact sha256 `{c.artifact_sha256}`",
            f"- champion: {f'`{ch.name}` v{ch.version}: metrics {ch.metrics}' if ch else 'none (first release)'}",
            f"- archive: {dossier.archive_version or 'none'}; critical: {dossier.critical}",
            "- drift PSI (training profile vs current inputs): "
            + (
                f"max {max(dossier.drift_psi.values()):.4f}"
                if dossier.drift_psi
                else f"not measured: {dossier.drift_measure}"
            ),
            f"- smoke test: {dossier.smoke}",
            f"- approved KPI exception: {dossier.exception or 'none'}",
        ]
    )
    artifact_id = create_markdown_artifact(
        markdown=md, key=artifact_key("dossier", model_name), description="Promotion dossier"
    )
    return {"dossier": dossier.model_dump(mode="json"), "artifact_id": str(artifact_id)}


@flow(name="execute-gates")
def execute_gates(dossier: dict) -> dict:
    d = Dossier.model_validate(dossier)
    report = evaluate_gates(d, gate_policy_for(d.model), bootstrap.clock().now())
    artifact_id = create_markdown_artifact(
        markdown=report.markdown(), key=artifact_key("gate-report", d.model), description="Promotion gate report"
    )
    return {"report": report.model_dump(mode="json"), "artifact_id": str(artifact_id)}


def _wait_for(role: Role, h: Handshake, run_id: str, timeout_s: int) -> tuple[Handshake, Approval | None]:
    """Pause for ``role``'s approval until a valid one arrives (refusals are recorded and asked again)."""
    logger = get_run_logger()
    for _ in range(MAX_APPROVAL_ATTEMPTS):
        received = pause_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(
                description=f"**{role.value.upper()}_GATE_PASS** for {h.model} v{h.candidate_version} "
                f"(requested by {h.requested_by}). Tech gate report: {h.tech_report_ref}",
                role=role.value,
                approver="",
                reference="",
            ),
            timeout=timeout_s,
            poll_interval=bootstrap.settings().approval_poll_seconds,
            key=f"{role.value}-approval-{uuid.uuid4().hex}",  # a fresh pause each time we ask
        )
        raw = received.model_dump(include=set(ApprovalFields.model_fields) | {"role"})
        try:
            if received.token.strip() and not received.approver.strip():  # the token alone, pasted in the UI
                raw |= fields_from_token(received.token)
            fields = ApprovalFields.model_validate({k: v for k, v in raw.items() if k != "role"})
            if raw["role"] != role.value:
                raise ApprovalRefused("role", f"this run waits for {role.value.upper()} approval, not {raw['role']}")
            check_approval(h, role, fields)
            signed = check_signed(h, role, fields, received.token, run_id, bootstrap.clock().now())
        except (ApprovalRefused, ValueError) as exc:  # ValueError: input the form let through, unreadable
            field, rule = (exc.field, exc.rule) if isinstance(exc, ApprovalRefused) else ("input", f"unreadable: {exc}")
            did = record_approval(run_id, h, role, None, f"{field}: {rule}", raw)
            logger.warning("approval refused (%s: %s), decision %s; waiting again", field, rule, did)
            continue
        a = Approval(**fields.model_dump(), role=role, at=bootstrap.clock().now(), key_id=signed.key_id)
        h = h.model_copy(update={role.value: a})
        record_approval(run_id, h, role, a, None, raw, signed)
        logger.info("%s_GATE_%s by %s", role.value.upper(), "PASS" if a.decision == "approve" else "REJECT", a.approver)
        return h, a
    return h, None


@governed_flow(DEPLOYMENT, log_prints=True, own_concurrency=True)
def promotion(
    model_name: str,
    candidate_version: str,
    requested_by: str = "registry-event",
    approval_timeout_minutes: int = 1440,
) -> dict[str, Any] | State[Any]:
    logger = get_run_logger()
    run_id = str(flow_run.id)
    with concurrency(ensure_model_lock(model_name), occupy=1, strict=True):
        with concurrency(ensure_alias_lock(model_name), occupy=1, strict=True):
            for done in finish_unfinished(model_name):  # an earlier promotion that crashed mid-way
                logger.warning("finished an interrupted promotion of %s: %s", model_name, done)
        for _attempt in range(2):  # a second pass only after an expired joint ack (re-check)
            with _working():
                built = build_dossier_flow(model_name, candidate_version, requested_by)
                gated = execute_gates(built["dossier"])
                report = GateReport.model_validate(gated["report"])
                report_ref = f"artifact:{gated['artifact_id']}"
                record_tech(run_id, report, report_ref, report_artifact_sha(built))
            if report.outcome is not PromotionOutcome.promote:
                did = record_outcome(
                    run_id,
                    report,
                    report_ref,
                    DecisionOutcome.reject,
                    f"{report.outcome.value}: " + "; ".join(report.measures_plan or ["gates failed"]),
                )
                emit_event(
                    event="releasegate.gate.failed",
                    resource={"prefect.resource.id": f"prefect.flow-run.{run_id}", "releasegate.model": model_name},
                    payload={
                        "outcome": report.outcome.value,
                        "candidate_version": candidate_version,
                        "measures_plan": report.measures_plan,
                        "decision_id": did,
                    },
                )
                logger.warning("promotion %s: %s", report.outcome.value, report.measures_plan)
                return {"outcome": report.outcome.value, "decision_id": did, "measures_plan": report.measures_plan}

            h = restore_handshake(
                run_id,
                Handshake(
                    model=model_name,
                    candidate_version=candidate_version,
                    requested_by=requested_by,
                    tech_report_ref=report_ref,
                    tech_pass=True,
                    candidate_sha256=report_artifact_sha(built),
                    gate_report_sha256=report.sha256(),
                    allow_lists=approver_config(model_name).allow_lists(),
                    keys=approver_config(model_name).keys,
                    requires_compliance=high_risk(model_name),
                ),
            )
            timeout_s = approval_timeout_minutes * 60
            for role in h.roles:
                if getattr(h, role.value) is None:
                    h, a = _wait_for(role, h, run_id, timeout_s)
                    if a is None:
                        did = record_outcome(
                            run_id,
                            report,
                            report_ref,
                            DecisionOutcome.reject,
                            f"no valid {role.value.upper()} approval after {MAX_APPROVAL_ATTEMPTS} tries",
                        )
                        return Failed(message=f"no valid {role.value} approval (decision {did})")
                if getattr(h, role.value).decision == "reject":
                    did = record_outcome(
                        run_id,
                        report,
                        report_ref,
                        DecisionOutcome.reject,
                        f"{role.value.upper()} rejected the release",
                        business_approved=False,
                    )
                    return Completed(message=f"{role.value} rejected (decision {did})")

            gate_current_run(DEPLOYMENT)  # release windows: a freeze defers the release, approvals persist
            ack = compute_ack(h, bootstrap.clock().now())
            if not ack.valid:
                record_outcome(
                    run_id, report, report_ref, DecisionOutcome.reject, ack.reason, reason_code="ACK_EXPIRED"
                )
                logger.warning("%s", ack.reason)
                continue
            assert ack.ref is not None  # a valid ack has its reference
            with _working(), concurrency(ensure_alias_lock(model_name), occupy=1, strict=True):
                result = binary_promotion(run_id, report, report_ref, h, ack.ref, report_artifact_sha(built))
            logger.info("promoted: %s", result)
            return {"outcome": "promote", **result, "joint_release_ack_ref": ack.ref}
    return Failed(message="joint release ack expired twice: start a new promotion")


def _working() -> AbstractContextManager[Any]:
    """A slot of the deployment's concurrency limit around the dossier and gates, and around the release;
    none while the run waits for approvals. The limit is declared in ``runtime_policy`` (prefect.yaml),
    not as Prefect's deployment key: Prefect 3.8 revokes a deployment slot's lease when the run pauses,
    then cancels the paused run at the engine's next lease renewal, within 225 s of its start."""
    policy = promotion.fn.runtime_policy
    if policy.concurrency_by != "releasegate":
        return nullcontext()
    return work_slot(DEPLOYMENT, policy, enqueue=True)


def report_artifact_sha(built: dict) -> str:
    return built["dossier"]["candidate"]["artifact_sha256"]

"""The promotion use case: dossier → gates → TECH → PM → RISK (→ COMPLIANCE) → JOINT_RELEASE_ACK →
binary release, over the ports it receives (``releasegate.promotion_ports``); no orchestrator here.

One promotion per model at a time (``Locks.model``). A crashed earlier promotion of the model is
finished or abandoned first (``PromotionRecords.finish_unfinished``, under the alias lock). The dossier
and the gate report are attached to the run as markdown artifacts; a hold or reject is recorded, emits
``releasegate.gate.failed`` and ends the run (``PromotionEnd.kind`` ``held`` / ``rejected``). Approvals
already recorded for this run are restored from the decision log (a run deferred or restarted finds
them again); each missing one is asked for (``services.promotion_approvals.wait_for``: refusals are
recorded and the run asks again, rate-limited). Then the release window (a freeze defers the run); if
the joint ack has expired by then (24 h after the later approval) the run records ``ACK_EXPIRED``,
re-checks the gates and asks again, once; a valid ack releases the binary under the alias lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from releasegate.decisions import DecisionOutcome
from releasegate.policy.gates import Dossier, GateReport, PromotionOutcome
from releasegate.policy.handshake import joint_release_ack, no_eligible_approver
from releasegate.policy.report_figures import report_figures
from releasegate.promotion_ports import PromotionPorts
from releasegate.services.halt_log import ModelHalted
from releasegate.services.promotion_approvals import wait_for
from releasegate.slugs import artifact_key

ATTEMPTS = 2  # a second pass only after an expired joint ack (re-check)


@dataclass(frozen=True)
class PromotionRequest:
    model_name: str
    candidate_version: str
    requested_by: str = "registry-event"
    approval_timeout_minutes: int = 1440


@dataclass(frozen=True)
class PromotionEnd:
    """How a promotion ended: ``promoted`` (``data``: the release's result), ``held`` / ``rejected`` by
    the gates or a business approver (recorded: the run did its job), ``failed`` (nobody may approve, or
    the joint ack expired twice)."""

    kind: Literal["promoted", "held", "rejected", "failed"]
    message: str = ""
    data: dict[str, Any] | None = field(default=None)


def run_promotion(p: PromotionPorts, req: PromotionRequest) -> PromotionEnd:
    model, version = req.model_name, req.candidate_version
    with p.locks.model(model):
        with p.locks.aliases(model):
            for done in p.records.finish_unfinished(model):  # an earlier promotion that crashed mid-way
                p.logger.warning("finished an interrupted promotion of %s: %s", model, done)
        for _attempt in range(ATTEMPTS):
            with p.locks.work():
                built = p.checks.dossier(model, version, req.requested_by)
                gated = p.checks.gates(built["dossier"])
                report = GateReport.model_validate(gated["report"])
                report_ref = f"artifact:{attach_artifacts(p, model, built, gated)}"
                figures = report_figures(built["dossier"], report)
                p.records.record_tech(p.run_id, report, report_ref, candidate_sha(built), figures)
            if report.outcome is not PromotionOutcome.promote:
                return _stopped_by_gates(p, report, report_ref, version)

            h = p.records.restore_handshake(
                p.run_id,
                p.records.handshake_base(
                    model,
                    version,
                    req.requested_by,
                    tech_report_ref=report_ref,
                    tech_pass=True,
                    candidate_sha256=candidate_sha(built),
                    gate_report_sha256=report.sha256(),
                ),
            )
            timeout_s = req.approval_timeout_minutes * 60
            for role in h.roles:
                if getattr(h, role.value) is None and (nobody := no_eligible_approver(h, role)):
                    did = p.records.record_outcome(
                        p.run_id, report, report_ref, DecisionOutcome.reject, nobody, reason_code="NO_ELIGIBLE_APPROVER"
                    )
                    p.logger.error("%s (decision %s)", nobody, did)
                    return PromotionEnd("failed", f"{nobody} (decision {did})")
                if getattr(h, role.value) is None:
                    h, _ = wait_for(p, role, h, timeout_s)
                if getattr(h, role.value).decision == "reject":
                    did = p.records.record_outcome(
                        p.run_id,
                        report,
                        report_ref,
                        DecisionOutcome.reject,
                        f"{role.value.upper()} rejected the release",
                        business_approved=False,
                    )
                    return PromotionEnd("rejected", f"{role.value} rejected (decision {did})")

            p.window.admit()  # release windows: a freeze defers the release, approvals persist
            ack = joint_release_ack(h, p.clock.now())
            if not ack.valid:
                p.records.record_outcome(
                    p.run_id, report, report_ref, DecisionOutcome.reject, ack.reason, reason_code="ACK_EXPIRED"
                )
                p.logger.warning("%s", ack.reason)
                continue
            assert ack.ref is not None  # a valid ack has its reference
            try:
                with p.locks.work(), p.locks.aliases(model):
                    result = p.records.release(p.run_id, report, report_ref, h, ack.ref, candidate_sha(built))
            except ModelHalted as exc:  # halted while the run waited for its approvals: refused, recorded
                p.logger.error("%s (decision %s)", exc.rule, exc.decision_id)
                return PromotionEnd("failed", f"{exc.rule} (decision {exc.decision_id})")
            p.logger.info("promoted: %s", result)
            return PromotionEnd("promoted", data={"outcome": "promote", **result, "joint_release_ack_ref": ack.ref})
    return PromotionEnd("failed", "joint release ack expired twice: start a new promotion")


def _stopped_by_gates(p: PromotionPorts, report: GateReport, report_ref: str, version: str) -> PromotionEnd:
    """A hold or reject of the gates: recorded, ``releasegate.gate.failed`` emitted, the run ends."""
    plan = "; ".join(report.measures_plan or ["gates failed"])
    did = p.records.record_outcome(
        p.run_id, report, report_ref, DecisionOutcome.reject, f"{report.outcome.value}: {plan}"
    )
    p.events.emit(
        "releasegate.gate.failed",
        report.model,
        {
            "outcome": report.outcome.value,
            "candidate_version": version,
            "measures_plan": report.measures_plan,
            "decision_id": did,
        },
    )
    p.logger.warning("promotion %s: %s", report.outcome.value, report.measures_plan)
    result = {"outcome": report.outcome.value, "decision_id": did, "measures_plan": report.measures_plan}
    kind: Literal["held", "rejected"] = "held" if report.outcome is PromotionOutcome.hold else "rejected"
    return PromotionEnd(kind, f"{report.outcome.value.upper()}: {plan} (decision {did})", result)


def attach_artifacts(p: PromotionPorts, model: str, built: dict[str, Any], gated: dict[str, Any]) -> str:
    """The dossier and the gate report as markdown artifacts of the promotion run itself (the run a
    person opens from the UI or ``watch``), not of its subflows; returns the gate report's artifact id."""
    p.artifacts.markdown(artifact_key("dossier", model), built["markdown"], "Promotion dossier")
    return p.artifacts.markdown(artifact_key("gate-report", model), gated["markdown"], "Promotion gate report")


def candidate_sha(built: dict[str, Any]) -> str:
    return str(built["dossier"]["candidate"]["artifact_sha256"])


def dossier_markdown(model_name: str, candidate_version: str, dossier: Dossier) -> str:
    """The dossier as the markdown artifact an approver reads."""
    c, ch, env = dossier.candidate, dossier.champion, dossier.environment
    return "\n".join(
        [
            f"# Dossier: {model_name} v{candidate_version}",
            f"- candidate `{c.name}` v{c.version}: metrics {c.metrics}, data {c.data_timestamp or '?'}",
            *(f"  - training data: {ds}" for ds in c.datasets),
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

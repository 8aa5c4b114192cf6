"""Binary promotion of the exact staging version, crash-safe, on its ports (``releasegate.ports``).

1. a sealed ``pending`` promotion record, before anything in the registry moves;
2. ``copy_model_version`` of the tested staging version into the prod model (once: a rerun finds the
   copy by its ``decision_id`` tag, or by source and artifact hash when the crash came before the tag),
   the artifact hash compared with the hash the gates and approvals were about;
3. aliases (previous champion to ``archive``, the copy to ``champion``) and the ``final`` record.

A registry failure raises ``RegistryUnavailable`` and leaves the pending record; the rerun of the run,
the protected-champion guard's next pass (``services.alias_guard``, every minute in the registry
watcher) or the next promotion of the model (``finish_unfinished``) completes or abandons it. Callers
hold the model's alias lock (``adapters.prefect_locks``). Unit-tested on an in-memory registry in
``tests/unit/test_binary_promotion.py``; on MLflow in ``tests/integration``.
"""

from __future__ import annotations

from typing import Any

from releasegate import records
from releasegate.decisions import DecisionOutcome, DecisionRecord
from releasegate.policy.gates import GateReport
from releasegate.policy.handshake import Handshake, approval_ref
from releasegate.ports import Ports
from releasegate.services.halt_log import halt_state, raise_if_halted
from releasegate.services.promotion_log import promotion_history

promotion_subject = records.promotion_subject


def _release_plan(flow_run_id, report, report_ref, h, ack_ref, candidate_sha256, ports: Ports):
    model, version = report.model, report.candidate_version
    reg = ports.registry
    staging, prod = reg.model_name("staging", model), reg.model_name("prod", model)
    previous = reg.alias_version(prod, reg.CHAMPION)
    rollback_plan = f"archive:{prod}@v{previous}" if previous else f"first-release:remove-champion:{prod}"
    refs = dict(
        tech_gate_report_ref=report_ref,
        pm_gate_ref=approval_ref(h.pm),
        risk_gate_ref=approval_ref(h.risk),
        joint_release_ack_ref=ack_ref,
        rollback_plan_ref=rollback_plan,
    )
    common = {
        "model_name": model,
        "candidate_version": version,
        "staging_model": staging,
        "prod_model": prod,
        "previous_champion": previous,
        "previous_archive": reg.alias_version(prod, reg.ARCHIVE),  # put back if the promotion is abandoned
        "candidate_sha256": candidate_sha256,
        "tech_ready": True,
        "business_approved": True,
        "promotion_outcome": "promote",
        # COMPLIANCE_GATE_PASS (risk_tier high): the decision record's fixed fields have no slot for it
        "compliance_gate_ref": approval_ref(h.compliance) if h.compliance else None,
    }
    return staging, prod, refs, common


def write_pending(
    flow_run_id: str,
    report: GateReport,
    report_ref: str,
    h: Handshake,
    ack_ref: str,
    candidate_sha256: str,
    ports: Ports,
):
    """Step 1 of binary promotion: the pending decision, before anything in the registry moves."""
    p = ports
    staging, prod, refs, common = _release_plan(flow_run_id, report, report_ref, h, ack_ref, candidate_sha256, p)
    return p.log.append(
        records.promotion(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"promote {staging} v{report.candidate_version} to {prod}: gates, PM and Risk passed "
            "(pending registry)",
            subject=promotion_subject(flow_run_id),
            actor="releasegate:promotion",
            details={**common, "status": "pending"},
            **refs,
        )
    )


def finish_unfinished(model: str, ports: Ports) -> list[dict[str, Any]]:
    """Finish every promotion of ``model`` that wrote its pending record but not its final one, if that is
    still what the log and the registry say should happen; otherwise abandon it (a sealed record), and
    put the champion back where the log says it is if the interrupted promotion had already moved it.

    Still valid: written less than the joint ack's validity ago, no sealed rollback or promotion of the
    model after it, and the champion is where the pending left it (its previous champion, or its copy)."""
    from releasegate.policy.handshake import ACK_VALIDITY

    log, registry = ports.log, ports.registry
    history = promotion_history(model, "promotion", ports.log)
    out = []
    for p in history.pendings:
        if p.decision_id in history.ends:
            continue
        d = p.details
        prod = d["prod_model"]
        version, sha = str(d["candidate_version"]), d["candidate_sha256"]
        copy = registry.find_copy(prod, d["staging_model"], version, sha, p.decision_id)
        champion = registry.alias_version(prod, registry.CHAMPION)
        later = [
            r
            for kind in ("promotion", "rollback")
            for r in log.trusted(kind=kind, since=p.decision_timestamp)[0]
            if r.details.get("model_name") == model and r.details.get("status") == "final"
        ]
        why = None
        halted = halt_state(log, model, ports.clock.now(), reader="promotion")
        if halted.in_force:
            why = f"the model is halted ({halted.sentence()})"
        elif later:
            why = f"a later {later[-1].decision_kind.value} ({later[-1].decision_id}) changed the model since"
        elif ports.clock.now() > p.decision_timestamp + ACK_VALIDITY:
            why = "its joint release ack has expired"
        elif champion not in (d.get("previous_champion"), copy):
            why = f"the champion is v{champion}, neither its previous champion nor its copy"
        if why is None:
            out.append(_complete(p, converged=True, ports=ports))
            continue
        restore = d.get("previous_champion") if (copy is not None and champion == copy and not later) else None
        # the archive its binary step had moved (records since "previous_archive" was written), put back
        # as it was unless a later record owns the aliases now: with or without the champion's move
        archive = registry.alias_version(prod, registry.ARCHIVE)
        previous_archive = str(d["previous_archive"]) if d.get("previous_archive") else None
        moved_archive = (
            not later
            and "previous_archive" in d
            and bool(d.get("previous_champion"))
            and archive == str(d["previous_champion"])
            and archive != previous_archive
        )
        log.append(
            records.promotion(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"interrupted promotion {p.decision_id} abandoned: {why}"
                + (f"; champion put back on v{restore}" if restore else "")
                + (
                    f"; archive put back on {f'v{previous_archive}' if previous_archive else 'no version'}"
                    if moved_archive
                    else ""
                ),
                subject=p.subject,
                actor="releasegate:promotion",
                tech_gate_report_ref=p.tech_gate_report_ref,
                details={
                    **{k: v for k, v in d.items() if k not in ("status", "seal")},
                    "status": "abandoned",
                    "pending_decision_id": p.decision_id,
                    "champion_restored": restore,
                    "archive_restored": moved_archive,
                },
            )
        )
        if restore:
            registry.set_alias(prod, registry.CHAMPION, restore)
        if moved_archive:
            if previous_archive:
                registry.set_alias(prod, registry.ARCHIVE, previous_archive)
            else:
                registry.delete_alias(prod, registry.ARCHIVE)
        out.append({"abandoned": p.decision_id, "reason": why, "champion_restored": restore})
    return out


def binary_promotion(
    flow_run_id: str,
    report: GateReport,
    report_ref: str,
    h: Handshake,
    ack_ref: str,
    candidate_sha256: str,
    ports: Ports,
) -> dict[str, Any]:
    """Binary promotion of the exact staging version: pending record, copy (once), hash check, aliases,
    final record. A rerun of the same run finishes what an earlier attempt started and never copies twice;
    a registry failure raises (``RegistryUnavailable``) and leaves the pending record for the rerun."""
    subject = promotion_subject(flow_run_id)
    # a halted model's champion is pinned: the binary step refuses (recorded), whatever path reached it
    raise_if_halted(
        ports.log, report.model, ports.clock.now(), what="promotion", subject=subject, actor="releasegate:promotion"
    )
    history = promotion_history(report.model, "promotion", ports.log)
    mine = [p for p in history.pendings if p.subject == subject]
    end = history.ends.get(mine[-1].decision_id) if mine else None
    if end is not None:
        if end.details.get("status") != "final":
            raise RuntimeError(f"this promotion already ended {end.details.get('status')} (decision {end.decision_id})")
        # already finished (by an earlier attempt, or by ``finish_unfinished`` at this run's start): say what
        # its final record says, so one decision is never reported converged and then not
        return {
            "prod_version": end.details.get("prod_version"),
            "decision_id": end.decision_id,
            "pending_decision_id": mine[-1].decision_id,
            "previous_champion": mine[-1].details.get("previous_champion"),
            "converged": bool(end.details.get("converged")),
        }
    if mine:  # a previous attempt stopped after its pending record: finish what it started, never copy twice
        return _complete(mine[-1], converged=True, ports=ports)
    pending = write_pending(flow_run_id, report, report_ref, h, ack_ref, candidate_sha256, ports)
    return _complete(pending, converged=False, ports=ports)


def _complete(pending: DecisionRecord, converged: bool, ports: Ports) -> dict[str, Any]:
    """Steps 2 and 3 of binary promotion for a pending record (idempotent: safe to run again)."""
    log, registry = ports.log, ports.registry
    d = pending.details
    staging, prod, version = d["staging_model"], d["prod_model"], str(d["candidate_version"])
    candidate_sha256, previous = d["candidate_sha256"], d.get("previous_champion")
    refs = {
        k: getattr(pending, k)
        for k in ("tech_gate_report_ref", "pm_gate_ref", "risk_gate_ref", "joint_release_ack_ref", "rollback_plan_ref")
    }
    common = {k: v for k, v in d.items() if k not in ("status", "seal")}

    prod_version = registry.find_copy(prod, staging, version, candidate_sha256, pending.decision_id)
    if prod_version is None:
        prod_version = registry.copy_to(staging, version, prod)
        registry.set_tags(prod, prod_version, {"decision_id": pending.decision_id})
    else:
        converged = True
    prod_sha = registry.artifact_sha256(f"models:/{prod}/{prod_version}")
    if prod_sha != candidate_sha256:
        log.append(
            records.promotion(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"binary check failed: {prod} v{prod_version} hashes {prod_sha[:12]}, tested "
                f"{staging} v{version} hashed {candidate_sha256[:12]}; aliases not moved",
                subject=pending.subject,
                actor="releasegate:promotion",
                tech_gate_report_ref=refs["tech_gate_report_ref"],
                details={
                    **common,
                    "status": "failed",
                    "pending_decision_id": pending.decision_id,
                    "prod_version": prod_version,
                    "prod_sha256": prod_sha,
                },
            )
        )
        raise RuntimeError(f"artifact hash mismatch between {staging} v{version} and {prod} v{prod_version}")
    registry.set_tags(
        prod,
        prod_version,
        {
            "source_model": staging,
            "source_version": version,
            "decision_id": pending.decision_id,
            "git_sha": registry.source_commit(staging, version) or "unknown",  # the commit the gate found
            "artifact_sha256": prod_sha,
        },
    )
    if previous and previous != prod_version:
        registry.set_alias(prod, registry.ARCHIVE, previous)
    registry.set_alias(prod, registry.CHAMPION, prod_version)
    final = log.append(
        records.promotion(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=f"promoted {staging} v{version} as {prod} v{prod_version} (champion); "
            + (f"v{previous} archived" if previous else "first release"),
            subject=pending.subject,
            actor="releasegate:promotion",
            details={
                **common,
                "status": "final",
                "pending_decision_id": pending.decision_id,
                "prod_version": prod_version,
                "prod_sha256": prod_sha,
                "converged": converged,
            },
            **refs,
        )
    )
    return {
        "prod_version": prod_version,
        "decision_id": final.decision_id,
        "pending_decision_id": pending.decision_id,
        "previous_champion": previous,
        "converged": converged,
    }

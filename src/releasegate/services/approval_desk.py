"""The approvals desk: the console's use cases over the same services the CLI uses.

``PrefectApprovalDesk`` lists the promotions paused for a business approval (``releasegate awaiting``:
``adapters.prefect_manual.awaiting_approval``) with the handshake the run would restore now
(``services.promotion``), the TECH gate report and its figures from the sealed log, and resumes a run
with an approval form's input (``prefect_manual.resume_paused``, what ``releasegate approve`` sends).
The paused run checks the approval again and records it. ``GovernedDirectory`` is the governed
approvers config; ``DecisionJournal`` records the console's sign-ins and refusals.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from releasegate import bootstrap, records
from releasegate.console_ports import PendingApproval
from releasegate.decisions import DecisionKind, DecisionOutcome
from releasegate.policy.approvers import ApproverConfig
from releasegate.policy.handshake import Role, no_eligible_approver
from releasegate.policy.passkeys import Passkey
from releasegate.records import promotion_subject


class PrefectApprovalDesk:
    def __init__(self, wait_seconds: float = 20.0) -> None:
        self.wait_seconds = wait_seconds

    def pending(self) -> list[PendingApproval]:
        from releasegate.adapters.prefect_manual import awaiting_approval

        return [self._item(v.id, v.parameters, v.awaiting_role, v.paused_since) for v in awaiting_approval()]

    def _item(self, run_id: str, params: dict[str, Any], role: str | None, since: Any) -> PendingApproval:
        from releasegate.services.promotion import handshake_base, restore_handshake

        good, _ = bootstrap.decision_log().trusted(kind=DecisionKind.approval, subject=promotion_subject(run_id))
        tech = [r for r in good if r.details.get("role") == "tech" and r.decision_outcome is DecisionOutcome.accept]
        d = tech[-1].details if tech else {}
        base = handshake_base(
            str(params.get("model_name", "?")),
            str(params.get("candidate_version", "?")),
            str(params.get("requested_by", "registry-event")),
            tech_report_ref=tech[-1].tech_gate_report_ref if tech else None,
            tech_pass=bool(tech),
            candidate_sha256=d.get("candidate_sha256"),
            gate_report_sha256=d.get("gate_report_sha256"),
        )
        h = restore_handshake(run_id, base)
        awaiting = Role(role) if role in ("pm", "risk", "compliance") else Role.pm
        return PendingApproval(
            run_id=str(run_id),
            handshake=h,
            awaiting=awaiting,
            paused_since=since,
            gate_report=d.get("gate_report"),
            figures=dict(d.get("figures") or {}),
            no_eligible_approver=no_eligible_approver(h, awaiting),
        )

    def record_refusal(self, item: PendingApproval, role: Role, refusal: str, raw: dict[str, Any]) -> str:
        from releasegate.services.promotion import record_approval

        return record_approval(item.run_id, item.handshake, role, None, refusal, raw)

    def submit(self, item: PendingApproval, run_input: dict[str, Any]) -> str:
        """Resume the run and wait (up to ``wait_seconds``) for the record it writes, as the CLI does."""
        from releasegate.adapters.prefect_manual import resume_paused

        log = bootstrap.decision_log()
        subject = promotion_subject(item.run_id)
        before = len(log.query(subject=subject))
        resume_paused(item.run_id, run_input)
        deadline = time.monotonic() + self.wait_seconds
        while time.monotonic() < deadline:
            new = log.query(subject=subject)[before:]
            mine = [
                r
                for r in new
                if r.decision_kind is DecisionKind.approval
                and r.details.get("role") == run_input.get("role")
                and log.is_trusted(r)
            ]
            if mine:
                return f"{mine[-1].decision_rationale} (decision {mine[-1].decision_id})"
            time.sleep(0.5)
        return f"approval sent to run {item.run_id}; it has not recorded it yet"


class GovernedDirectory:
    def config(self) -> ApproverConfig:
        from releasegate.services.approvers import governed_config

        return governed_config("console")

    def enrol(self, name: str, passkey: Passkey, actor: str) -> tuple[str, list[str]]:
        from releasegate.services.approvers import propose_enrolment

        return propose_enrolment(name, passkey, actor)


class DecisionJournal:
    def record(self, what: str, actor: str, accepted: bool, rationale: str, **details: Any) -> str:
        log = bootstrap.decision_log()
        subject = f"console:{what}"
        if accepted:
            new = records.event(
                decision_outcome=DecisionOutcome.accept,
                decision_rationale=rationale,
                subject=subject,
                actor=actor,
                details={
                    "event_id": str(uuid.uuid4()),
                    "event_type": f"releasegate.console.{what}",
                    "idempotency_key": str(uuid.uuid4()),
                    **details,
                },
            )
        else:
            new = records.refusal(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=rationale,
                subject=subject,
                actor=actor or "<missing>",
                details={"field": "?", "rule": rationale, **details},
            )
        return log.append(new).decision_id

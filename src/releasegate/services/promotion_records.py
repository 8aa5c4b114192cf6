"""``PromotionRecords`` (``releasegate.promotion_ports``) on the decision log: the promotion's record
keeping as ``services.promotion`` and ``services.release`` do it, behind the port the use case
(``services.promotion_flow``) receives."""

from __future__ import annotations

from typing import Any

from releasegate.app import App
from releasegate.decisions import DecisionOutcome
from releasegate.policy.gates import GateReport
from releasegate.policy.handshake import Approval, Handshake, Role
from releasegate.policy.passkey_approvals import AnySigned
from releasegate.services import promotion, release


class LoggedPromotionRecords:
    """The promotion's records in the sealed decision log of ``app``, the binary step on its ports."""

    def __init__(self, app: App) -> None:
        self.app = app

    def finish_unfinished(self, model: str) -> list[dict[str, Any]]:
        return release.finish_unfinished(model, self.app.ports)

    def record_tech(
        self,
        run_id: str,
        report: GateReport,
        report_ref: str,
        candidate_sha256: str,
        figures: dict[str, Any] | None = None,
    ) -> None:
        promotion.record_tech(self.app, run_id, report, report_ref, candidate_sha256, figures)

    def record_outcome(
        self,
        run_id: str,
        report: GateReport,
        report_ref: str,
        outcome: DecisionOutcome,
        rationale: str,
        **details: Any,
    ) -> str:
        return promotion.record_outcome(self.app, run_id, report, report_ref, outcome, rationale, **details)

    def handshake_base(self, model: str, version: str, requested_by: str, **facts: Any) -> Handshake:
        return promotion.handshake_base(model, version, requested_by, self.app, **facts)

    def restore_handshake(self, run_id: str, base: Handshake) -> Handshake:
        return promotion.restore_handshake(run_id, base, self.app)

    def current_rules(self, h: Handshake) -> Handshake:
        return promotion.current_rules(self.app, h)

    def record_approval(
        self,
        run_id: str,
        h: Handshake,
        role: Role,
        a: Approval | None,
        refusal: str | None,
        raw: dict[str, Any],
        signed: AnySigned | None = None,
    ) -> str:
        return promotion.record_approval(run_id, h, role, a, refusal, raw, signed, app=self.app)

    def release(
        self, run_id: str, report: GateReport, report_ref: str, h: Handshake, ack_ref: str, candidate_sha256: str
    ) -> dict[str, Any]:
        return release.binary_promotion(run_id, report, report_ref, h, ack_ref, candidate_sha256, self.app.ports)

"""``NotificationLog`` (``releasegate.promotion_ports``) on the sealed decision log: one ``notification``
record per notice and channel under ``notification:<run id>``; only sealed records count (a forged one
cannot silence a notice). The round of a pause is the number of expired joint acks of the run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from releasegate import records
from releasegate.decisions import DecisionKind, DecisionOutcome
from releasegate.promotion_ports import Notice
from releasegate.records import notification_subject, promotion_subject

if TYPE_CHECKING:
    from releasegate.store.trust import SealedDecisionLog


class LoggedNotifications:
    def __init__(self, log: SealedDecisionLog) -> None:
        self.log = log

    def pause_round(self, run_id: str) -> int:
        good, _ = self.log.trusted(subject=promotion_subject(run_id), kind=DecisionKind.promotion)
        return sum(1 for r in good if r.details.get("reason_code") == "ACK_EXPIRED")

    def sent(self, notice: Notice, channel: str) -> bool:
        good, _ = self.log.trusted(subject=notification_subject(notice.run_id), kind=DecisionKind.notification)
        return any(r.details.get("key") == notice.key and r.details.get("channel") == channel for r in good)

    def record(self, notice: Notice, channel: str, error: str | None) -> str:
        who = ", ".join(notice.approvers) or "nobody eligible"
        what = f"{notice.role.upper()} approval of {notice.model} v{notice.version} ({who})"
        if notice.kind != "approval":  # an escalation, a reminder
            what = f"{notice.summary} ({who})"
        rec = self.log.append(
            records.notification(
                decision_outcome=DecisionOutcome.reject if error else DecisionOutcome.accept,
                decision_rationale=f"{channel} notice not delivered: {error}" if error else f"{channel} notice: {what}",
                subject=notification_subject(notice.run_id),
                actor="releasegate",
                details={
                    "key": notice.key,
                    "channel": channel,
                    "role": notice.role,
                    "run_id": notice.run_id,
                    "model_name": notice.model,
                    "candidate_version": notice.version,
                    "approvers": list(notice.approvers),
                    "link": notice.link,
                    "error": error,
                    "notice_kind": notice.kind,
                    "facts": list(notice.facts),
                },
            )
        )
        return rec.decision_id

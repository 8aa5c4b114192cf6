"""Which promotions are due a reminder that their joint release ack is about to expire (pure).

The ``JOINT_RELEASE_ACK`` (``policy.handshake.joint_release_ack``) exists once every business approval
of the release is in (PM, RISK, and COMPLIANCE for a model of ``risk_tier: high``) and expires
``ACK_VALIDITY`` (24 h) after the later of them. Its clock starts at the last approval, so nothing can
expire while an approval is still awaited. What keeps a fully approved promotion from being released
at once is the release window (a change freeze defers the run after its approvals) or a run that is
down. If it is still not released when the ack expires, the run records ``ACK_EXPIRED``, re-checks the
gates and asks every approver again (``services.promotion_flow``).

``ack_reminder_due`` reads one promotion run's sealed records in log order (``RunRecord``) as the run
restores them (``services.handshakes.restore``): an ``ACK_EXPIRED`` clears the approvals given before
it, any other promotion record ends the run (released, rejected, held, failed, abandoned). A reminder
is due from ``lead`` before the ack's expiry up to the expiry itself; not before, not after, not for
a run that has ended or whose approver rejected, and never when ``lead`` is zero (reminders off). Its
key names the run and the expiry, so one reminder is sent per promotion and expiry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from releasegate.policy.handshake import ACK_VALIDITY, Approval, Handshake, Role, joint_release_ack

DEFAULT_LEAD = timedelta(hours=2)
ACK_EXPIRED = "ACK_EXPIRED"


class RunRecord(BaseModel):
    """One sealed record of a promotion run (subject ``promotion:<run id>``), as far as the ack goes."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["approval", "promotion"]
    at: datetime
    role: str | None = None  # an approval: tech, pm, risk, compliance
    approver: str | None = None
    decision: str | None = None  # an approval: approve | reject
    refused: bool = False  # an approval refused (not given)
    reason_code: str | None = None  # a promotion record: ACK_EXPIRED, NO_ELIGIBLE_APPROVER, ...


class PromotionRun(BaseModel):
    model_config = ConfigDict(frozen=True)
    run_id: str
    model: str
    version: str
    requires_compliance: bool
    records: tuple[RunRecord, ...]


class AckReminder(BaseModel):
    model_config = ConfigDict(frozen=True)
    run_id: str
    model: str
    version: str
    expires_at: datetime
    approvals: tuple[tuple[str, str], ...]  # (role, approver) of the approvals the ack joins, in order

    @property
    def key(self) -> str:
        return f"ack-reminder:{self.run_id}:{self.expires_at.isoformat()}"


def standing_approvals(records: Sequence[RunRecord]) -> tuple[dict[Role, Approval], bool]:
    """The business approvals given since the run's last expired ack, and whether the run has ended."""
    given: dict[Role, Approval] = {}
    ended = False
    for r in records:
        if r.kind == "promotion":
            if r.reason_code == ACK_EXPIRED:
                given = {}
            else:
                ended = True
            continue
        if r.refused or r.role not in {x.value for x in Role} or r.decision not in ("approve", "reject"):
            continue
        role = Role(r.role)
        decision: Literal["approve", "reject"] = "approve" if r.decision == "approve" else "reject"
        given[role] = Approval(approver=r.approver or "?", decision=decision, reference="-", role=role, at=r.at)
    return given, ended


def ack_reminder_due(
    run: PromotionRun, now: datetime, lead: timedelta = DEFAULT_LEAD, validity: timedelta = ACK_VALIDITY
) -> AckReminder | None:
    """The reminder ``run`` is due at ``now``, or None (see the module doc)."""
    if lead <= timedelta(0):
        return None
    given, ended = standing_approvals(run.records)
    if ended:
        return None
    h = Handshake(
        model=run.model,
        candidate_version=run.version,
        requested_by="",
        tech_report_ref="recorded",
        tech_pass=True,
        requires_compliance=run.requires_compliance,
    ).model_copy(update={role.value: a for role, a in given.items()})
    ack = joint_release_ack(h, now, validity)
    if not ack.valid or ack.expires_at is None or now < ack.expires_at - lead:
        return None
    return AckReminder(
        run_id=run.run_id,
        model=run.model,
        version=run.version,
        expires_at=ack.expires_at,
        approvals=tuple((a.role.value, a.approver) for a in h.given()),
    )


def ack_reminders_due(runs: Sequence[PromotionRun], now: datetime, lead: timedelta = DEFAULT_LEAD) -> list[AckReminder]:
    return [r for run in runs if (r := ack_reminder_due(run, now, lead)) is not None]

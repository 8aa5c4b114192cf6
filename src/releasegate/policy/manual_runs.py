"""Manual runs: a person asks for a run; the contract decides, and the decision is recorded.

``decide_manual_run`` turns the raw parameters of a manual run (the Prefect UI's run form, or the CLI)
into an accepted ``ManualTrigger`` or a refusal, and always into the ``manual_run`` decision that records
it. An approval (``approved_at``) must not lie in the future (``APPROVAL_CLOCK_SKEW`` allowed) nor be
older than ``MAX_APPROVAL_AGE`` (7 days) at ``now``: ``approval_age_problem``. Pure: ``now`` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from releasegate import records
from releasegate.decisions import DecisionOutcome, NewDecision
from releasegate.policy.triggers import ManualTrigger

APPROVAL_CLOCK_SKEW = timedelta(minutes=5)  # an approval up to 5 min "in the future" is clock skew
MAX_APPROVAL_AGE = timedelta(days=7)  # an older approval no longer covers a run: get a fresh one


@dataclass(frozen=True)
class ManualRunDecision:
    trigger: ManualTrigger | None
    decision: NewDecision

    @property
    def accepted(self) -> bool:
        return self.trigger is not None


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(contract)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _human(delta: timedelta) -> str:
    if delta % timedelta(days=1) == timedelta(0):
        return f"{delta.days} day" + ("s" if delta.days != 1 else "")
    if delta % timedelta(minutes=1) == timedelta(0):
        return f"{int(delta.total_seconds() // 60)} min"
    return f"{delta.total_seconds():.0f} s"


def approval_age_problem(
    approved_at: datetime | None, now: datetime, max_age: timedelta = MAX_APPROVAL_AGE
) -> str | None:
    """Why ``approved_at`` cannot cover a run started at ``now`` (``None``: it can, or there is none)."""
    if approved_at is None:
        return None
    if approved_at > now + APPROVAL_CLOCK_SKEW:
        return (
            f"approved_at: approval cannot lie in the future (more than {_human(APPROVAL_CLOCK_SKEW)} after now: "
            f"approved_at {approved_at.isoformat()}, now {now.isoformat()}); give the time the approval was given"
        )
    if now - approved_at > max_age:
        return (
            f"approved_at: approval is older than the maximum age of {_human(max_age)} (approved_at "
            f"{approved_at.isoformat()}, now {now.isoformat()}); get a fresh approval and start the run again"
        )
    return None


def decide_manual_run(
    raw: dict[str, Any], subject: str, actor: str, now: datetime, max_approval_age: timedelta = MAX_APPROVAL_AGE
) -> ManualRunDecision:
    def _s(key: str) -> str:
        v = raw.get(key)
        return "" if v is None else (v.value if hasattr(v, "value") else str(v))

    details = {
        "requested_by": _s("requested_by") or "<missing>",
        "reason_code": _s("reason_code") or "<missing>",
        "target_environment": _s("target_environment") or "dev",
        "ticket_ref": _s("ticket_ref") or None,
        "approved_at": _s("approved_at") or None,
    }
    try:
        trigger = ManualTrigger.model_validate(raw, context={"now": now})
        reason = approval_age_problem(trigger.approved_at, now, max_approval_age)
    except ValidationError as exc:
        trigger, reason = None, describe_validation_error(exc)
    if trigger is None or reason is not None:
        return ManualRunDecision(
            trigger=None,
            decision=records.manual_run(
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"manual run refused: {reason}",
                subject=subject,
                actor=actor,
                details={**details, "refusal": reason},
            ),
        )
    return ManualRunDecision(
        trigger=trigger,
        decision=records.manual_run(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=(
                f"manual run by {trigger.requested_by} ({trigger.reason_code.value}) against "
                f"{trigger.target_environment.value}" + (f", ticket {trigger.ticket_ref}" if trigger.ticket_ref else "")
            ),
            subject=subject,
            actor=actor,
            details=trigger.model_dump(mode="json"),
        ),
    )

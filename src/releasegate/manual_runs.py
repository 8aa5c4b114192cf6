"""Manual runs: a person asks for a run; the contract decides, and the decision is recorded.

``decide_manual_run`` turns the raw parameters of a manual run (the Prefect UI's run form, or the CLI)
into an accepted ``ManualTrigger`` or a refusal, and always into the ``manual_run`` decision that records
it. Pure: ``now`` is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from .decisions import DecisionKind, DecisionOutcome, NewDecision
from .triggers import ManualTrigger


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


def decide_manual_run(raw: dict[str, Any], subject: str, actor: str, now: datetime) -> ManualRunDecision:
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
    except ValidationError as exc:
        reason = describe_validation_error(exc)
        return ManualRunDecision(
            trigger=None,
            decision=NewDecision(
                decision_kind=DecisionKind.manual_run,
                decision_outcome=DecisionOutcome.reject,
                decision_rationale=f"manual run refused: {reason}",
                subject=subject,
                actor=actor,
                details={**details, "refusal": reason},
            ),
        )
    return ManualRunDecision(
        trigger=trigger,
        decision=NewDecision(
            decision_kind=DecisionKind.manual_run,
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

"""A model's halt as the decision log tells it, and the refusal every path records while it holds.

Read by every path that could move a halted model's champion or start its runs (the governed flows,
the binary step of a promotion, finishing an interrupted promotion, rollback, the alias guard) and by
the halt use case itself (``services.halt``). Only ``halt`` records sealed by the service path count
(``releasegate.store.trust``); an unsealed one is recorded as a refused forgery and ignored.
"""

from __future__ import annotations

from datetime import datetime

from releasegate import records
from releasegate.decisions import DecisionKind, DecisionOutcome, DecisionRecord
from releasegate.details import HaltDetails
from releasegate.errors import Refused
from releasegate.policy.halt import HaltEvent, HaltState, Step, replay
from releasegate.ports import DecisionLog


class ModelHalted(Refused):
    """What a path that would move a halted model's champion or start its run raises (recorded)."""

    what = "refused: model halted"

    def __init__(self, field: str, rule: str, decision_id: str) -> None:
        super().__init__(field, rule)
        self.decision_id = decision_id


def halt_events(log: DecisionLog, model: str, reader: str) -> list[HaltEvent]:
    good, forged = log.trusted(kind=DecisionKind.halt, subject=records.model_subject(model))
    log.refuse_forged(forged, reader)
    out = []
    for r in good:
        d = HaltDetails.model_validate(r.details)
        out.append(
            HaltEvent(
                decision_id=r.decision_id,
                at=r.decision_timestamp,
                step=Step(d.step),
                person=d.person,
                role=d.role,
                reason=d.reason or r.decision_rationale,
                ticket=d.ticket_ref,
                pinned_champion=d.pinned_champion,
                paused_schedules=tuple(d.paused_schedules),
            )
        )
    return out


def halt_state(log: DecisionLog, model: str, now: datetime, reader: str = "halt") -> HaltState:
    return replay(halt_events(log, model, reader), now)


def refuse_if_halted(
    log: DecisionLog, model: str, now: datetime, *, what: str, subject: str, actor: str
) -> DecisionRecord | None:
    """When ``model`` is halted: record that ``what`` was refused (kind ``refusal``, on ``subject``) and
    return the record; else None."""
    state = halt_state(log, model, now, reader=actor.removeprefix("releasegate:"))
    if not state.in_force:
        return None
    return log.append(
        records.refusal(
            decision_outcome=DecisionOutcome.reject,
            decision_rationale=f"{what} refused: model {model} is halted ({state.sentence()}); "
            "it starts again only after a confirmed resume (`releasegate resume`)",
            subject=subject,
            actor=actor,
            details={
                "field": "model_name",
                "rule": "a halted model's champion does not move and its runs do not start",
                "model_name": model,
                "halt_decision_id": state.halt_decision_id,
                "refused": what,
            },
        )
    )


def raise_if_halted(log: DecisionLog, model: str, now: datetime, *, what: str, subject: str, actor: str) -> None:
    """``refuse_if_halted``, raising ``ModelHalted`` (naming the recorded refusal) when it refused."""
    rec = refuse_if_halted(log, model, now, what=what, subject=subject, actor=actor)
    if rec is not None:
        raise ModelHalted("model_name", rec.decision_rationale, rec.decision_id)

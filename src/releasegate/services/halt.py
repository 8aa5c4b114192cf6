"""The halt switch of a model, as a use case over the ports it receives (``HaltPorts``).

``act(ports, model, "halt" | "resume", person, reason, ticket)`` takes one step of the two-person rule
(``policy.halt``): the first person's request, or the second person's confirmation of the open request.
Every step is a sealed ``halt`` record on ``model:<name>``; every refusal (an unknown model, a missing
ticket, the requester confirming their own request, someone on neither list, a model already halted)
is a ``refusal`` record on the same subject and raises ``HaltRefused`` naming it.

A confirmed halt pins the model's last approved champion (``HaltPorts.champion``: where the log's last
sealed promotion or rollback put it) and pauses the model's schedules in the orchestrator
(``Schedules.pause``: the ones it turned off are recorded, so a resume turns on those and no other);
a confirmed resume turns them on again. The schedules are switched *before* the confirmation is
recorded: when the orchestrator fails, nothing is recorded, the request stays open and the same
command can be given again (pausing is idempotent).

What a halt stops is enforced where each path starts, from the records (``services.halt_log``): a
governed run of the model is refused (``adapters.prefect_flows``), a promotion's binary step and the
finishing of an interrupted one refuse (``services.release``), a rollback refuses (``services.rollback``),
and the alias guard restores the pinned champion as an incident (``services.alias_guard``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from releasegate import records
from releasegate.clock import Clock
from releasegate.decisions import DecisionKind, DecisionOutcome
from releasegate.details import HaltDetails
from releasegate.policy.approvers import ApproverConfig
from releasegate.policy.halt import Action, HaltRefused, HaltState, Step, check_input, next_step
from releasegate.ports import DecisionLog
from releasegate.services.halt_log import halt_state
from releasegate.store.trust import SealedDecisionLog

ACTOR = "releasegate:halt"


class Schedules(Protocol):
    """The orchestrator's schedules of a model's deployments (``adapters.prefect_halt``)."""

    def pause(self, model: str) -> list[str]:
        """Turn off every active schedule that starts runs of ``model``; the ones turned off now."""
        ...

    def resume(self, schedules: list[str]) -> list[str]:
        """Turn these schedules (as ``pause`` named them) on again; the ones turned on."""
        ...


@dataclass(frozen=True)
class HaltPorts:
    log: DecisionLog
    clock: Clock
    config: Callable[[], ApproverConfig]  # the governed approvers config in force
    known_model: Callable[[str], bool]  # whether the model manifest names the model
    champion: Callable[[str], str | None]  # the model's last approved champion (what a halt pins)
    schedules: Schedules


@dataclass(frozen=True)
class HaltResult:
    model: str
    step: Step
    decision_id: str
    state: HaltState  # after the step
    schedules: list[str] = field(default_factory=list)  # paused (halt) or resumed (resume) by this step

    def sentence(self) -> str:
        what = {
            Step.request_halt: "halt REQUESTED (not in force yet)",
            Step.confirm_halt: "halt CONFIRMED: in force",
            Step.request_resume: "resume REQUESTED (the halt still holds)",
            Step.confirm_resume: "resume CONFIRMED: the halt is lifted",
        }[self.step]
        text = f"{self.model}: {what} (decision {self.decision_id}); {self.state.sentence()}"
        if self.step is Step.confirm_halt:
            text += f"; schedules paused: {', '.join(self.schedules) or 'none active'}"
        if self.step is Step.confirm_resume:
            text += f"; schedules resumed: {', '.join(self.schedules) or 'none'}"
        return text


def _refuse(p: HaltPorts, model: str, person: str, action: str, exc: HaltRefused, channel: str) -> HaltRefused:
    rec = p.log.append(
        records.refusal(
            decision_outcome=DecisionOutcome.reject,
            decision_rationale=f"{action} of model {model} by {person or '<nobody>'} refused ({channel}): "
            f"{exc.field}: {exc.rule}",
            subject=records.model_subject(model),
            actor=person.strip() or ACTOR,
            details={"field": exc.field, "rule": exc.rule, "model_name": model, "refused": action, "channel": channel},
        )
    )
    exc.decision_id = rec.decision_id  # type: ignore[attr-defined]
    return exc


def act(
    p: HaltPorts, model: str, action: Action, person: str, reason: str, ticket: str, channel: str = "cli"
) -> HaltResult:
    """``person``'s halt or resume of ``model``: a request, or the confirmation of the open one."""
    now = p.clock.now()
    try:
        check_input(person, reason, ticket)
        if not p.known_model(model):
            raise HaltRefused("model", f"{model!r} is not a model of the manifest: give a governed model's name")
        verdict = next_step(halt_state(p.log, model, now), action, person, reason, ticket, p.config())
    except HaltRefused as exc:
        raise _refuse(p, model, person, action, exc, channel) from None
    person = person.strip()
    pinned: str | None = None
    switched: list[str] = []
    if verdict.step is Step.confirm_halt:
        pinned = p.champion(model)
        switched = p.schedules.pause(model)
    elif verdict.step is Step.confirm_resume:
        switched = p.schedules.resume(list(halt_state(p.log, model, now).paused_schedules))
    details = HaltDetails(
        model_name=model,
        step=verdict.step.value,
        person=person,
        role=verdict.role,
        ticket_ref=ticket.strip(),
        reason=reason.strip(),
        request_decision_id=verdict.request.decision_id if verdict.request else None,
        pinned_champion=pinned,
        paused_schedules=switched,
    )
    rationale = {
        Step.request_halt: f"halt of {model} requested by {person} ({verdict.role}, {channel}): {reason.strip()}",
        Step.confirm_halt: f"halt of {model} confirmed by {person} ({verdict.role}, {channel}): {reason.strip()}; "
        f"champion pinned at {f'v{pinned}' if pinned else 'no version'}",
        Step.request_resume: f"resume of {model} requested by {person} ({verdict.role}, {channel}): {reason.strip()}",
        Step.confirm_resume: f"resume of {model} confirmed by {person} ({verdict.role}, {channel}): {reason.strip()}",
    }[verdict.step]
    rec = p.log.append(
        records.halt(
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=rationale,
            subject=records.model_subject(model),
            actor=person,
            details=details.model_dump(mode="json", exclude_none=True),
        )
    )
    return HaltResult(model, verdict.step, rec.decision_id, halt_state(p.log, model, p.clock.now()), switched)


def state_of(p: HaltPorts, model: str) -> HaltState:
    return halt_state(p.log, model, p.clock.now())


def overview(p: HaltPorts) -> dict[str, HaltState]:
    """Every model with a halt record, and its state now (halted or requested ones first)."""
    models = sorted({str(r.details.get("model_name")) for r in p.log.query(kind=DecisionKind.halt)})
    states = {m: state_of(p, m) for m in models}
    return dict(sorted(states.items(), key=lambda kv: (kv[1].status == "none", kv[0])))


class HaltDesk:
    """The console's side of the halt switch (``console_ports.Halts``) over ``HaltPorts``."""

    def __init__(self, ports: HaltPorts) -> None:
        self.ports = ports

    def state(self, model: str) -> HaltState | None:
        return state_of(self.ports, model) if self.ports.known_model(model) else None

    def act(self, model: str, action: Action, person: str, reason: str, ticket: str) -> str:
        return act(self.ports, model, action, person, reason, ticket, channel="console").sentence()


def why_halted(
    log: SealedDecisionLog, clock: Clock, fresh_s: float = 1.0, monotonic: Callable[[], float] = time.monotonic
) -> Callable[[str], str | None]:
    """The model pages' answer (``services.model_pages.ModelPages.halted``): the sentence of a model's
    halt while it holds, else None (a request not yet confirmed halts nothing). Which models have any
    halt record is one indexed query by kind, read again when the log's head moved and at most every
    ``fresh_s`` seconds, so an inventory of 100 models replays only the ones that have one. A display
    only: every path that acts on a halt reads it afresh (``services.halt_log``)."""
    kept: dict[str, Any] = {"at": None}

    def halted(model: str) -> str | None:
        now = monotonic()
        if kept["at"] is None or now - kept["at"] >= fresh_s:
            head = log.head()[0]
            if kept.get("head") != head:
                good, _ = log.trusted(kind=DecisionKind.halt)
                kept.update(head=head, models={str(r.details.get("model_name")) for r in good})
            kept["at"] = now
        if model not in kept["models"]:
            return None
        state = halt_state(log, model, clock.now(), reader="model pages")
        return state.sentence() if state.in_force else None

    return halted

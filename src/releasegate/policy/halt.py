"""A model's halt switch (EU AI Act Art. 14(4)(e): the overseers can stop the system), as pure rules.

A halt is a decision of two people: one requests it, a *second* person confirms it, and only the
confirmation takes effect. One of the two is on the ``oncall`` list of the governed approvers config,
the other on its ``risk`` list (either order). Resuming works the same way: a resume is requested by
one person and confirmed by another pair of on-call and Risk. A request that nobody confirms within
``REQUEST_VALIDITY`` lapses (the state falls back to what it was).

The state of a model's halt is replayed from its sealed ``halt`` records, in log order:

* ``none``: not halted (never, or resumed);
* ``requested``: a halt requested, not confirmed yet: nothing is enforced;
* ``halted``: confirmed: the champion is pinned (``pinned_champion``), promotions, rollbacks and runs of
  the model are refused and its schedules are paused;
* ``resume_requested``: still halted, a resume is requested and waits for its second person.

``next_step`` says which step a person's ``halt`` or ``resume`` is (request, or confirm of the open
request) or refuses it (``HaltRefused``, naming the field and the rule). Pure: the clock is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from releasegate.errors import Refused
from releasegate.policy.approvers import ApproverConfig

REQUEST_VALIDITY = timedelta(hours=24)  # an unconfirmed request lapses after this


class HaltRefused(Refused):
    what = "halt refused"


class Step(StrEnum):
    request_halt = "request_halt"
    confirm_halt = "confirm_halt"
    request_resume = "request_resume"
    confirm_resume = "confirm_resume"


Status = Literal["none", "requested", "halted", "resume_requested"]
Action = Literal["halt", "resume"]


@dataclass(frozen=True)
class HaltEvent:
    """One sealed ``halt`` record, reduced to what the rules read."""

    decision_id: str
    at: datetime
    step: Step
    person: str
    role: str
    reason: str
    ticket: str
    pinned_champion: str | None = None
    paused_schedules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    decision_id: str
    person: str
    role: str
    at: datetime
    reason: str
    ticket: str

    def expires_at(self) -> datetime:
        return self.at + REQUEST_VALIDITY


@dataclass(frozen=True)
class HaltState:
    status: Status = "none"
    request: Request | None = None  # the open request (halt or resume) waiting for its second person
    halted_by: tuple[str, str] | None = None  # (requester, confirmer) of the halt in force
    halted_at: datetime | None = None
    halt_decision_id: str | None = None  # the confirmation in force
    reason: str = ""
    ticket: str = ""
    pinned_champion: str | None = None
    paused_schedules: tuple[str, ...] = ()

    @property
    def in_force(self) -> bool:
        """Whether the halt holds (confirmed and not resumed): what every path enforces."""
        return self.status in ("halted", "resume_requested")

    def sentence(self) -> str:
        if self.status == "none":
            return "not halted"
        if self.status == "requested":
            assert self.request is not None
            r = self.request
            return (
                f"halt requested by {r.person} ({r.role}) at {r.at:%Y-%m-%d %H:%M} UTC, ticket {r.ticket}: "
                f"waits for a second person ({_other(r.role)}) to confirm until {r.expires_at():%Y-%m-%d %H:%M} UTC"
            )
        pair = " and ".join(self.halted_by or ())
        pinned = f"v{self.pinned_champion}" if self.pinned_champion else "no champion"
        since = f"{self.halted_at:%Y-%m-%d %H:%M} UTC"
        text = f"HALTED since {since} by {pair}, ticket {self.ticket}; champion pinned at {pinned}"
        if self.status == "resume_requested":
            assert self.request is not None
            r = self.request
            text += f"; resume requested by {r.person} ({r.role}), waits for a second person ({_other(r.role)})"
        return text


def _other(role: str) -> str:
    return "risk" if role == "oncall" else "oncall"


def replay(events: list[HaltEvent], now: datetime) -> HaltState:
    """The state the records leave, at ``now`` (an open request older than ``REQUEST_VALIDITY`` lapsed)."""
    state = HaltState()
    for e in events:
        request = Request(e.decision_id, e.person, e.role, e.at, e.reason, e.ticket)
        if e.step is Step.request_halt and state.status in ("none", "requested"):
            state = HaltState(status="requested", request=request)
        elif e.step is Step.confirm_halt and state.status == "requested" and state.request is not None:
            state = HaltState(
                status="halted",
                halted_by=(state.request.person, e.person),
                halted_at=e.at,
                halt_decision_id=e.decision_id,
                reason=state.request.reason,
                ticket=state.request.ticket,
                pinned_champion=e.pinned_champion,
                paused_schedules=e.paused_schedules,
            )
        elif e.step is Step.request_resume and state.in_force:
            state = _with(state, status="resume_requested", request=request)
        elif e.step is Step.confirm_resume and state.status == "resume_requested":
            state = HaltState()
    if state.request is not None and now > state.request.expires_at():
        state = HaltState() if state.status == "requested" else _with(state, status="halted", request=None)
    return state


def _with(state: HaltState, **changes: Any) -> HaltState:
    return HaltState(**{**state.__dict__, **changes})


def role_of(config: ApproverConfig, person: str) -> list[str]:
    """The halt roles ``person`` holds in the governed config: ``oncall``, ``risk``, both or none."""
    return [role for role, names in (("oncall", config.oncall), ("risk", config.risk)) if person in names]


def confirmer_role(requester_role: str, confirmer: str, config: ApproverConfig) -> str | None:
    """The role ``confirmer`` confirms in: the one the requester's request does not count for."""
    wanted = _other(requester_role)
    return wanted if wanted in role_of(config, confirmer) else None


@dataclass(frozen=True)
class Verdict:
    step: Step
    role: str  # the role the step counts for
    request: Request | None = None  # a confirmation: the request it confirms


def check_input(person: str, reason: str, ticket: str) -> None:
    """``HaltRefused`` for a step without who, why or ticket (checked before anything is read)."""
    if not person.strip():
        raise HaltRefused("by", "say who you are (--by NAME; the console uses your sign-in)")
    if not reason.strip():
        raise HaltRefused("reason", "required: say why (--reason TEXT)")
    if not ticket.strip():
        raise HaltRefused("ticket", "required: the incident or change ticket (--ticket REF)")


def next_step(
    state: HaltState, action: Action, person: str, reason: str, ticket: str, config: ApproverConfig
) -> Verdict:
    """Which step ``person``'s ``action`` is, or ``HaltRefused`` (field, rule) saying why it may not be."""
    check_input(person, reason, ticket)
    person = person.strip()
    roles = role_of(config, person)
    if not roles:
        raise HaltRefused(
            "by",
            f"{person!r} is on neither the oncall nor the risk list of the governed approvers config: "
            "only on-call engineers and Risk request or confirm a halt or a resume",
        )
    opening = Step.request_halt if action == "halt" else Step.request_resume
    confirming = Step.confirm_halt if action == "halt" else Step.confirm_resume
    open_status = "requested" if action == "halt" else "resume_requested"
    if state.status == open_status:
        req = state.request
        assert req is not None
        if req.person == person:
            raise HaltRefused(
                "by",
                f"{person} requested this {action}: a second person confirms it "
                f"(someone on the {_other(req.role)} list)",
            )
        role = confirmer_role(req.role, person, config)
        if role is None:
            raise HaltRefused(
                "by",
                f"the {action} was requested by {req.person} for {req.role}: the confirmer must be on the "
                f"{_other(req.role)} list, and {person} is on {', '.join(roles)} only",
            )
        return Verdict(confirming, role, req)
    if action == "halt" and state.in_force:
        raise HaltRefused("model", f"already halted ({state.sentence()}): `releasegate resume` to lift it")
    if action == "resume" and state.status == "none":
        raise HaltRefused("model", "not halted: there is nothing to resume")
    if action == "resume" and state.status == "requested":
        raise HaltRefused("model", "a halt is requested, not confirmed: nothing to resume (it lapses unconfirmed)")
    return Verdict(opening, roles[0])

"""`releasegate halt MODEL`, `releasegate resume MODEL` and `releasegate halts [MODEL]`: a model's
two-person halt switch (``services.halt``). The first person's command requests, a second person's
(the other of on-call and Risk) confirms; each prints which it was and what remains."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer
from rich.markup import escape
from rich.table import Table

from releasegate.cli._common import console, exit_refused

Reason = Annotated[str, typer.Option("--reason", help="Why (recorded).")]
Ticket = Annotated[str, typer.Option("--ticket", help="The incident or change ticket (recorded).")]
By = Annotated[str, typer.Option("--by", help="Who you are: a name on the oncall or risk list of the governed config.")]
Model = Annotated[str, typer.Argument(help="The model (its manifest name).")]


def _act(model: str, action: Literal["halt", "resume"], by: str, reason: str, ticket: str) -> None:
    from releasegate import bootstrap
    from releasegate.policy.halt import HaltRefused, Step
    from releasegate.services.halt import act

    try:
        result = act(bootstrap.halt_ports(), model, action, by, reason, ticket, channel="cli")
    except HaltRefused as exc:
        exit_refused(exc, code=2)
    console.print(escape(result.sentence()), soft_wrap=True)
    if result.step in (Step.request_halt, Step.request_resume):
        other = "risk" if result.state.request and result.state.request.role == "oncall" else "oncall"
        console.print(
            f"next: a second person on the {other} list runs `releasegate {action} {model} --reason ... "
            f"--ticket {escape(ticket)} --by NAME` (or confirms on the console's /models/{model}/halt page)",
            soft_wrap=True,
        )


def halt_cmd(model: Model, reason: Reason = "", ticket: Ticket = "", by: By = "") -> None:
    """Halt MODEL: pin its champion, pause its schedules, refuse its promotions and runs. The first
    person requests; a second (on-call + Risk) confirms, and only then it takes effect."""
    _act(model, "halt", by, reason, ticket)


def resume_cmd(model: Model, reason: Reason = "", ticket: Ticket = "", by: By = "") -> None:
    """Lift MODEL's halt: requested by one person, confirmed by a second (on-call + Risk)."""
    _act(model, "resume", by, reason, ticket)


def halts_cmd(
    model: Annotated[str | None, typer.Argument(help="One model (default: every model ever halted).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The halt state of every model with a halt record (or of MODEL)."""
    from releasegate import bootstrap
    from releasegate.services.halt import overview, state_of

    ports = bootstrap.halt_ports()
    if model is not None and not ports.known_model(model):
        exit_refused("model", f"{model!r} is not a model of the manifest: give a governed model's name", code=2)
    states = {model: state_of(ports, model)} if model else overview(ports)
    if as_json:
        rows = [
            {
                "model": m,
                "status": s.status,
                "in_force": s.in_force,
                "pinned_champion": s.pinned_champion,
                "ticket": s.ticket or (s.request.ticket if s.request else ""),
                "summary": s.sentence(),
            }
            for m, s in states.items()
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"halts ({len(states)})")
    for col in ("model", "status", "pinned champion", "summary"):
        table.add_column(col, overflow="fold")
    for m, s in states.items():
        table.add_row(m, s.status, s.pinned_champion or "", s.sentence())
    console.print(table)

"""A model's halt switch in the console: ``GET /models/{name}/halt`` (the state, with the form to request
or confirm a halt or a resume), ``POST /models/{name}/halt`` and ``POST /models/{name}/resume``.

The signed-in user is the person who acts; on-call engineers and Risk (roles ``oncall``, ``risk``) may
act, anyone signed in may read. The rules (two different people, one on-call and one Risk) are the
use case's (``services.halt`` over ``policy.halt``): the console passes the form on and shows what the
use case says, its refusals (already recorded by it) as sentences. CSRF is checked on every POST.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from releasegate.console.sessions import CSRF_FIELD
from releasegate.policy.halt import HaltRefused

if TYPE_CHECKING:
    from releasegate.console.app import Console
    from releasegate.console_ports import Halts

ACTORS = {"oncall", "risk"}


def register(app: FastAPI, c: Console) -> None:
    from releasegate.console.app import Problem

    def desk() -> Halts:
        if c.ports.halts is None:
            raise Problem(404, "halts", "The halt switch is not wired in this console.")
        return c.ports.halts

    def page(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
        user = c.user(request)
        state = desk().state(name)
        if state is None:
            raise c.refuse(request, 404, "model", f"{name!r} is not a model of the manifest: no halt switch for it.")
        held = c.roles(request, user)
        can_act = bool(held & ACTORS)
        return c.render(
            request, "halt.html", status, model=name, state=state, can_act=can_act, roles=sorted(held), **context
        )

    @app.get("/models/{name}/halt", response_class=HTMLResponse)
    def halt_page(request: Request, name: str) -> HTMLResponse:
        return page(request, name)

    async def act(request: Request, name: str, action: Literal["halt", "resume"]) -> HTMLResponse:
        user = c.user(request)
        form = await request.form()
        c.csrf(request, str(form.get(CSRF_FIELD) or ""))
        held = c.roles(request, user)
        if not held & ACTORS:
            raise c.refuse(
                request,
                403,
                "role",
                f"Only on-call engineers and Risk request or confirm a {action}; your roles: "
                f"{', '.join(sorted(held)) or 'none'}.",
            )
        reason, ticket = str(form.get("reason") or "")[:2000], str(form.get("ticket") or "")[:200]
        # off the event loop: the use case calls Prefect's and MLflow's synchronous clients
        try:
            said = await run_in_threadpool(desk().act, name, action, user, reason, ticket)
        except HaltRefused as exc:  # recorded by the use case
            sentence = f"Your {action} of {name} was refused: {exc.field}: {exc.rule}."
            raise Problem(400, exc.field, sentence, getattr(exc, "decision_id", None)) from None
        return await run_in_threadpool(lambda: page(request, name, done=said))

    @app.post("/models/{name}/halt", response_class=HTMLResponse)
    async def halt_post(request: Request, name: str) -> HTMLResponse:
        return await act(request, name, "halt")

    @app.post("/models/{name}/resume", response_class=HTMLResponse)
    async def resume_post(request: Request, name: str) -> HTMLResponse:
        return await act(request, name, "resume")

"""The operations page: ``GET /operations`` (open deferrals against their SLA, gate failures to
acknowledge, incidents open and closed) and ``POST /operations/gate-failures/{decision_id}/ack``.

Who reads it: ``oncall``, ``risk``, ``admin`` and ``auditor`` (``ApproverConfig.granted``); anybody else
is refused, and the refusal recorded. Who acknowledges a gate failure from the page: ``oncall``,
``risk`` and ``admin``, always as the signed-in name; an auditor reads and never acts (as on the inbox,
where an auditor cannot approve): the form is not shown and a posted acknowledgement is refused and
recorded. The acknowledgement itself is ``services.gate_failures.acknowledge``, as for
``releasegate gate-failures ack``. Every acknowledgement carries the session's CSRF token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from releasegate.console.sessions import CSRF_FIELD
from releasegate.console_ports import DeferralView, Operations
from releasegate.errors import Refused

if TYPE_CHECKING:
    from releasegate.console.app import Console

READERS = frozenset({"oncall", "risk", "admin", "auditor"})
ACTORS = frozenset({"oncall", "risk", "admin"})  # who acknowledges from the page (auditors read only)
NOTE_MAX = 500


def sla_bar(d: DeferralView) -> dict[str, Any]:
    """How far the deferral's wait runs against its incident SLA, for the bar: percent (capped at 100),
    the alert mark's position, the label."""
    full = max(d.incident_minutes, 1)
    return {
        "percent": min(100, round(100 * d.waited_minutes / full)),
        "alert_at": round(100 * d.alert_minutes / full),
        "label": f"{d.waited_minutes} min of {d.alert_minutes}/{d.incident_minutes}",
    }


def register(app: FastAPI, c: Console) -> None:
    from releasegate.console.app import Problem

    def desk(request: Request) -> Operations:
        ops = c.ports.operations
        if ops is None:
            raise Problem(404, "operations", "This console serves no operations page.")
        return ops

    def held(request: Request) -> set[str]:
        return c.roles(request, c.user(request))

    def reader(request: Request) -> str:
        user = c.user(request)
        if not (roles := held(request)) & READERS:
            raise c.refuse(
                request,
                403,
                "role",
                f"The operations page is for on-call, Risk, admins and auditors; your roles: "
                f"{', '.join(sorted(roles)) or 'none'}.",
            )
        return user

    @app.get("/operations", response_class=HTMLResponse)
    async def operations(request: Request, acked: str = "") -> Response:
        return await run_in_threadpool(operations_, request, acked)

    def operations_(request: Request, acked: str) -> Response:
        ops = desk(request)
        reader(request)
        deferrals = ops.deferrals()
        failures = ops.gate_failures()
        incidents = ops.incidents()
        note = f"Gate failure {acked[:80]} acknowledged (decision recorded)." if acked else None
        return c.render(
            request,
            "operations.html",
            deferrals=[(d, sla_bar(d)) for d in deferrals],
            failures=failures,
            to_ack=sum(1 for f in failures if not f.acknowledged),
            open_incidents=[i for i in incidents if i.state != "closed"],
            closed_incidents=[i for i in incidents if i.state == "closed"],
            note=note,
            now=c.ports.clock.now(),
            can_ack=bool(held(request) & ACTORS),
        )

    @app.post("/operations/gate-failures/{decision_id}/ack")
    async def acknowledge(request: Request, decision_id: str) -> Response:
        form = await request.form()
        return await run_in_threadpool(acknowledge_, request, decision_id, dict(form))

    def acknowledge_(request: Request, decision_id: str, form: dict[str, Any]) -> Response:
        ops = desk(request)
        user = c.user(request)
        c.csrf(request, str(form.get(CSRF_FIELD) or ""))
        reader(request)
        if not held(request) & ACTORS:
            raise c.refuse(
                request,
                403,
                "role",
                "Gate failures are acknowledged by on-call, Risk or an admin; an auditor reads the page and "
                "does not act on it.",
            )
        note = str(form.get("note") or "").strip()
        if len(note) > NOTE_MAX:
            raise c.refuse(request, 400, "note", f"The note is {len(note)} characters; give at most {NOTE_MAX}.")
        try:
            ops.acknowledge(decision_id, user, note)
        except Refused as exc:
            raise c.refuse(
                request, 409, exc.field, f"Acknowledgement refused: {exc.field}: {exc.rule}. Reload the page."
            ) from None
        return RedirectResponse(f"/operations?acked={decision_id}#gate-failures", status_code=303)

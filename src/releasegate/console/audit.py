"""The audit page: ``GET /audit`` (the log's head, the last signed checkpoints, the newest verification of
the chain, a link per model version to its evidence pack), ``POST /audit/verify`` (start a verification
in the background) and ``GET /audit/export`` (the JSON Lines of ``releasegate audit export``, streamed:
never built in memory, whatever the log's size).

Who reads it, verifies and exports: ``auditor``, ``admin``, ``risk`` and ``compliance``
(``ApproverConfig.granted``); anybody else is refused, and the refusal recorded. A verification changes
no state but writes its result to the log, so its request carries the CSRF token like every POST.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from releasegate.console.sessions import CSRF_FIELD
from releasegate.console_ports import AuditDesk

if TYPE_CHECKING:
    from releasegate.console.app import Console

READERS = frozenset({"auditor", "admin", "risk", "compliance"})
CHUNK_LINES = 1000  # lines a chunk of the export: one write each, memory bounded by one chunk


def _chunks(lines: Iterator[str]) -> Iterator[str]:
    chunk: list[str] = []
    for line in lines:
        chunk.append(line + "\n")
        if len(chunk) == CHUNK_LINES:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)


def register(app: FastAPI, c: Console) -> None:
    from releasegate.console.app import Problem

    def desk() -> AuditDesk:
        audit = c.ports.audit
        if audit is None:
            raise Problem(404, "audit", "This console serves no audit page.")
        return audit

    def reader(request: Request) -> str:
        user = c.user(request)
        held = c.roles(request, user)
        if not held & READERS:
            raise c.refuse(
                request,
                403,
                "role",
                f"The audit page is for auditors, admins, Risk and Compliance; your roles: "
                f"{', '.join(sorted(held)) or 'none'}.",
            )
        return user

    @app.get("/audit", response_class=HTMLResponse)
    async def audit(request: Request) -> Response:
        return await run_in_threadpool(audit_, request)

    def audit_(request: Request) -> Response:
        d = desk()
        reader(request)
        return c.render(request, "audit.html", o=d.overview(), now=c.ports.clock.now())

    @app.post("/audit/verify")
    async def verify(request: Request) -> Response:
        form = await request.form()
        return await run_in_threadpool(verify_, request, str(form.get(CSRF_FIELD) or ""))

    def verify_(request: Request, token: str) -> Response:
        d = desk()
        user = c.user(request)
        c.csrf(request, token)
        reader(request)
        d.start_verify(user)
        return RedirectResponse("/audit#verification", status_code=303)

    @app.get("/audit/export")
    async def export(request: Request) -> Response:
        d = desk()
        await run_in_threadpool(reader, request)
        seq = (await run_in_threadpool(d.overview, 0)).records
        lines = d.export_lines()
        return StreamingResponse(
            _chunks(lines),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="decision-log-{seq}.jsonl"'},
        )

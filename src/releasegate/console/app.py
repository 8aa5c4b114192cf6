"""``create_app``: the governance console, a FastAPI app over the ports it receives (``console_ports``).

Routes a script can rely on: ``GET /healthz`` (no sign-in), ``GET /inbox``, ``POST /approvals/{run_id}``;
``GET /operations`` (``console.operations``), ``GET /audit`` and ``GET /audit/export`` (``console.audit``);
the sign-in and enrolment pages (``/signin``, ``/enrol``) and their WebAuthn ceremonies
(``console.ceremonies``); the sign-in with the identity provider (``/signin/oidc``, ``console.oidc``).
Everything else requires a session; every state-changing request carries the session's CSRF token
(header ``X-CSRF-Token`` or form field ``csrf_token``); an idle session expires.
Every sign-in and every refusal is recorded (the journal; an approval's refusal on the promotion's own
subject, as the CLI records it). A refusal is shown as a plain sentence, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from releasegate.console import charts
from releasegate.console.sessions import COOKIE, CSRF_FIELD, CSRF_HEADER, Session, SessionStore, csrf_matches
from releasegate.console_ports import ConsolePorts, ConsoleSettings, PendingApproval
from releasegate.errors import ReleasegateError
from releasegate.policy.approvers import ApproverConfig
from releasegate.policy.handshake import Role, not_independent

HERE = Path(__file__).parent
# Only the console's own script and styles run; no page may frame it (an approval button under a
# decoy page), nothing is loaded from elsewhere.
PAGE_SIZE = 50  # inbox items a page
CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"


class Problem(ReleasegateError):
    """A refusal shown to the user as a sentence (``status``: the HTTP status; ``field``: what broke)."""

    def __init__(self, status: int, field: str, sentence: str, decision_id: str | None = None) -> None:
        super().__init__(sentence)
        self.status, self.field, self.sentence, self.decision_id = status, field, sentence, decision_id


@dataclass
class Console:
    ports: ConsolePorts
    settings: ConsoleSettings
    store: SessionStore
    templates: Jinja2Templates
    answered: dict[str, datetime] = field(default_factory=dict)  # challenges already answered: no replay

    def session(self, request: Request) -> Session:
        return request.state.session  # type: ignore[no-any-return]

    def refuse(self, request: Request, status: int, field: str, sentence: str, what: str = "refusal") -> Problem:
        """Record the refusal in the decision log and return the ``Problem`` to raise."""
        s = self.session(request)
        did = self.ports.journal.record(
            what,
            s.user or "<anonymous>",
            False,
            f"console refused {request.method} {request.url.path}: {sentence}",
            field=field,
            rule=sentence,
            path=request.url.path,
        )
        return Problem(status, field, sentence, did)

    def csrf(self, request: Request, given: str | None = None) -> None:
        token = given if given is not None else request.headers.get(CSRF_HEADER)
        if not csrf_matches(self.session(request), token):
            raise self.refuse(
                request,
                403,
                "csrf_token",
                "This request carries no valid CSRF token (a cross-site request, or a page opened before you "
                "signed in): reload the page and try again.",
            )

    def user(self, request: Request) -> str:
        """The signed-in user; ``Problem`` (recorded) when the session is missing or expired."""
        s = self.session(request)
        if s.user:
            s.seen = self.ports.clock.now().isoformat()
            return s.user
        if s.expired:
            minutes = self.settings.idle_timeout_s // 60
            raise self.refuse(
                request, 401, "session", f"Your session expired after {minutes} minutes idle: sign in again."
            )
        if request.method != "GET":  # a state-changing request without a session: a refusal to record
            raise self.refuse(request, 401, "session", "Sign in first.")
        raise Problem(401, "session", "Sign in first.")

    def roles(self, request: Request, user: str) -> set[str]:
        """The console roles ``user`` holds in this session (``ApproverConfig.granted``: the config's lists,
        narrowed to an OIDC sign-in's groups)."""
        return self.ports.directory.config().granted(user, self.session(request).roles)

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        s = self.session(request)
        return self.templates.TemplateResponse(
            request, name, {"user": s.user, "csrf": s.csrf, **context}, status_code=status
        )


def roles_of(config: ApproverConfig, name: str) -> list[Role]:
    return [role for role, names in config.allow_lists().items() if name in names]


def create_app(ports: ConsolePorts, settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()
    app = FastAPI(title="releasegate console", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    c = Console(ports, settings, SessionStore(settings.secret_key, settings.idle_timeout_s), templates)
    app.state.console = c
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def sessions(request: Request, call_next: Any) -> Response:
        request.state.session = c.store.load(request.cookies.get(COOKIE), ports.clock.now())
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if request.url.path.startswith("/static") or request.url.path == "/healthz":
            return response
        response.set_cookie(
            COOKIE,
            c.store.dump(request.state.session),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https" or settings.origin.startswith("https:"),
            path="/",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> Response:
        wants_json = (
            "application/json" in (request.headers.get("content-type") or "")
            or request.url.path.startswith(("/approvals", "/signin/", "/enrol/"))
            and not request.url.path.startswith("/signin/oidc")
        )
        if wants_json:
            return JSONResponse(
                {"error": exc.sentence, "field": exc.field, "decision_id": exc.decision_id}, status_code=exc.status
            )
        if exc.status == 401 and request.method == "GET":
            return RedirectResponse(f"/signin?why={exc.field}", status_code=303)
        return c.render(request, "problem.html", exc.status, problem=exc)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/")
    def home() -> RedirectResponse:
        return RedirectResponse("/inbox", status_code=303)

    @app.get("/signin", response_class=HTMLResponse)
    def signin_page(request: Request, why: str = "") -> HTMLResponse:
        note = "Your session expired: sign in again." if why == "session" else ""
        return c.render(request, "signin.html", note=note, oidc=bool(settings.oidc and settings.oidc.enabled))

    @app.get("/enrol", response_class=HTMLResponse)
    def enrol_page(request: Request) -> HTMLResponse:
        invited = str(request.query_params.get("name") or "")[:200]  # the invitation's link names them
        return c.render(request, "enrol.html", invited=invited)

    @app.post("/signout")
    async def signout(request: Request) -> RedirectResponse:
        form = await request.form()
        c.csrf(request, str(form.get(CSRF_FIELD) or ""))
        request.state.session = Session()
        return RedirectResponse("/signin", status_code=303)

    @app.get("/inbox", response_class=HTMLResponse)
    def inbox(request: Request, page: str = "1", run: str | None = None) -> Response:
        """What waits for the user's roles (a reader: every waiting promotion), ``PAGE_SIZE`` a page,
        oldest pause first, with the total: none is left out. ``run``: that one promotion alone (the
        link a notice carries), wherever it stands in the pages."""
        user = c.user(request)
        number = int(page) if page.isdigit() else 0
        if number < 1:
            raise c.refuse(request, 400, "page", f"page {page!r} is not a page number: give 1 or more (/inbox?page=2).")
        config = ports.directory.config()
        held = config.granted(user, c.session(request).roles)
        mine = [r for r in roles_of(config, user) if r.value in held]
        reader = bool(held & {"auditor", "admin"})
        roles = [r.value.upper() for r in mine] + (["AUDITOR"] if "auditor" in held else [])
        if run is not None:
            one = ports.desk.item(run)
            if one is None:
                note = f"Promotion run {run} does not wait for an approval (any more): it was decided or ended."
                return c.render(request, "inbox.html", items=[], roles=roles, paging=None, note=note)
            if not reader and one.awaiting not in mine:
                raise c.refuse(
                    request,
                    403,
                    "run",
                    f"Promotion run {run} waits for the {one.awaiting.value.upper()} approval; your roles: "
                    f"{', '.join(roles) or 'none'}.",
                )
            return c.render(request, "inbox.html", items=[_view(one, user, mine)], roles=roles, paging=None, note=None)
        found, total = ports.desk.page(None if reader else mine, (number - 1) * PAGE_SIZE, PAGE_SIZE)
        last = max(1, -(-total // PAGE_SIZE))
        if number > last:
            return RedirectResponse(f"/inbox?page={last}", status_code=303)
        items = [_view(i, user, mine) for i in found]
        first = (number - 1) * PAGE_SIZE + 1
        paging = {"first": first, "last": first + len(items) - 1, "total": total, "page": number, "pages": last}
        return c.render(request, "inbox.html", items=items, roles=roles, paging=paging, note=None)

    from releasegate.console import audit, ceremonies, halts, models, oidc, operations

    ceremonies.register(app, c)
    models.register(app, c)
    oidc.register(app, c)
    operations.register(app, c)
    audit.register(app, c)
    halts.register(app, c)
    return app


def _view(item: PendingApproval, user: str, mine: list[Role]) -> dict[str, Any]:
    """What the inbox shows of one paused promotion, with the sentence that says why ``user`` cannot act."""
    h = item.handshake
    blocked = None
    if item.awaiting not in mine:
        blocked = f"You read this promotion; you are not on the {item.awaiting.value.upper()} allow-list."
    elif (why := not_independent(h, user)) is not None:
        blocked = f"You cannot approve this promotion: {user} {why}."
    elif any(a.approver == user for a in h.given()):
        blocked = "You cannot approve this promotion: you gave another approval of it (four eyes)."
    elif user not in h.passkeys:
        blocked = "You cannot approve yet: no passkey is pinned for you (enrol one; admins approve it)."
    report = item.gate_report or {}
    return {
        "item": item,
        "h": h,
        "report": report,
        "measures": report.get("measures_plan") or [],
        "kpi_chart": Markup(k) if (k := charts.kpi_chart(item.figures)) else None,
        "psi_chart": Markup(p) if (p := charts.psi_chart(item.figures)) else None,
        "blocked": blocked,
        "smoke": item.figures.get("smoke"),
    }

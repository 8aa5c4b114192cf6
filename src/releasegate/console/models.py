"""The model pages: ``GET /models`` (the inventory of every governed model), ``GET /models/{name}``
(its decisions, its EOD monitoring per business date with thresholds, its champion history) and
``GET /models/{name}/versions/{version}/evidence`` (a version's signed evidence pack as a zip).

Any signed-in user holding a console role (pm, risk, compliance, auditor, admin, oncall) may read them;
a user with none is refused (recorded). The pages call the ``ModelPages`` port
(``console_ports``); the charts are drawn here (``console.model_charts``), the rules are the service's.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from releasegate.console.model_charts import Point, champion_chart, day_chart
from releasegate.errors import Refused
from releasegate.model_views import Check, ModelPage, MonitoringDay

if TYPE_CHECKING:
    from releasegate.console.app import Console
    from releasegate.console_ports import ModelPages

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")  # policy.models.NAME
VERSION = re.compile(r"^[0-9]{1,12}$")
READER_ROLES = frozenset({"pm", "risk", "compliance", "auditor", "admin", "oncall"})


def register(app: FastAPI, c: Console) -> None:
    def reader(request: Request) -> tuple[str, ModelPages]:
        user = c.user(request)
        held = c.roles(request, user)
        if not held & READER_ROLES:
            raise c.refuse(
                request,
                403,
                "role",
                f"{user} holds no console role: the model pages are for pm, risk, compliance, auditor, admin "
                "and oncall; ask an admin to add you to one of those lists.",
            )
        if c.ports.models is None:
            raise c.refuse(request, 404, "models", "This console serves no model pages (no model reader wired).")
        return user, c.ports.models

    def named(request: Request, name: str) -> str:
        if not MODEL_NAME.match(name):
            raise c.refuse(
                request,
                400,
                "name",
                f"{name[:100]!r} is not a model name: letters, digits, '-' and '_', as in the manifest (/models).",
            )
        return name

    @app.get("/models", response_class=HTMLResponse)
    def inventory(request: Request) -> Response:
        _, models = reader(request)
        rows = models.inventory()
        return c.render(request, "models.html", rows=rows, now=c.ports.clock.now())

    @app.get("/models/{name}", response_class=HTMLResponse)
    def model(request: Request, name: str) -> Response:
        _, models = reader(request)
        page = models.page(named(request, name))
        if page is None:
            raise c.refuse(
                request,
                404,
                "name",
                f"No model {name!r} in the manifest or the decision log: pick one from the inventory (/models).",
            )
        return c.render(request, "model.html", page=page, row=page.row, charts=charts_of(page, c.ports.clock.now()))

    @app.get("/models/{name}/versions/{version}/evidence")
    def evidence(request: Request, name: str, version: str) -> Response:
        user, models = reader(request)
        named(request, name)
        if not VERSION.match(version):
            raise c.refuse(
                request, 400, "version", f"{version[:50]!r} is not a version number: give the digits (e.g. 4)."
            )
        try:
            pack = models.evidence(name, version, user)
        except Refused as exc:
            raise c.refuse(request, 404, exc.field, f"No evidence pack of {name} v{version}: {exc.rule}.") from None
        return Response(
            pack.content,
            media_type=pack.media_type,
            headers={"Content-Disposition": f'attachment; filename="{pack.filename}"'},
        )


def _points(days: list[MonitoringDay], check: str, note: bool = False) -> list[Point]:
    out = []
    for d in days:
        measured: Check = getattr(d, check)
        tip = ", ".join(f"{f} {v:.3f}" for f, v in d.worst_features) if note else ""
        out.append(Point(d.business_date, measured.value, measured.threshold, d.led_to, tip))
    return out


def charts_of(page: ModelPage, now: Any) -> dict[str, Markup | None]:
    """The page's charts: each measure per business date with its threshold, the champion history."""
    days, kpi = page.days, page.kpi or "primary KPI"
    higher = page.kpi_direction != "lower"

    def markup(svg: str | None) -> Markup | None:
        return Markup(svg) if svg else None  # noqa: S704 - drawn by model_charts, every text escaped

    steps = [(s.at, s.version, s.how) for s in page.champion_history]
    return {
        "kpi": markup(
            day_chart(
                f"{kpi} per business date ({'higher' if higher else 'lower'} is better), threshold: the baseline "
                "less the allowed drop",
                kpi,
                _points(days, "kpi"),
                bad="below" if higher else "above",
            )
        ),
        "psi": markup(
            day_chart(
                "Largest PSI of a feature per business date, against the drift limit",
                "max PSI",
                _points(days, "psi", True),
            )
        ),
        "missing": markup(
            day_chart(
                "Missing values: the worst feature's share per business date", "missing share", _points(days, "missing")
            )
        ),
        "failures": markup(
            day_chart("Failed predictions: share of rows per business date", "failure rate", _points(days, "failures"))
        ),
        "latency": markup(
            day_chart("Scoring latency p95 per business date, against the SLA", "p95 ms", _points(days, "latency"))
        ),
        "champion": markup(champion_chart(f"Champion of prod.{page.row.name} over time", steps, now)),
    }

"""Inline SVG charts of a model's monitoring per business date and of its champion history, drawn on
the server (pure; no script).

``day_chart``: one measure per business date as a line, with its threshold (a dashed line; ``bad``
says which side breaches: ``above`` for PSI, missing values, failures, latency; ``below`` for a KPI
where higher is better), days over the threshold as dots in the refusal colour, and the days whose
verdict led to a rollback (R) or a retrain (T) marked with a labelled vertical line. ``champion_chart``:
the champion's version over time as a step line, each change labelled with its version and how it
came (promotion or rollback). Every chart has a ``<title>``, labelled axes and text labels, so it
reads without colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 210, 64, 16, 14, 44
OK, BAD, LINE, MUTED, MARK = "#2f7d4f", "#b3261e", "#1f1f1f", "#6b6b6b", "#8a4b00"


@dataclass(frozen=True)
class Point:
    day: str  # business date, ISO
    value: float | None
    threshold: float | None = None
    marker: str | None = None  # "rollback" | "retrain"
    note: str = ""  # shown in the point's tooltip (e.g. the worst features)


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _svg(title: str, desc: str) -> list[str]:
    return [
        f'<svg class="chart" role="img" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title><desc>{escape(desc)}</desc>'
    ]


def day_chart(title: str, axis: str, points: Sequence[Point], bad: str = "above") -> str | None:
    """A measure per business date against its threshold; None when no day has a value."""
    have = [p for p in points if p.value is not None]
    if not have:
        return None
    values = [p.value for p in have if p.value is not None] + [p.threshold for p in points if p.threshold is not None]
    lo, hi = min(values), max(values)
    if bad == "above":  # a rate or a PSI: from zero
        lo = min(0.0, lo)
    span = (hi - lo) or abs(hi) or 1.0
    lo, hi = lo - (0.0 if lo == 0 else span * 0.08), hi + span * 0.12
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(points) - 1)

    def x(i: int) -> float:
        return LEFT + (i * step if len(points) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h - (v - lo) / (hi - lo) * plot_h

    breaches = [
        i
        for i, p in enumerate(points)
        if p.value is not None
        and p.threshold is not None
        and (p.value > p.threshold if bad == "above" else p.value < p.threshold)
    ]
    marked = [(i, p.marker) for i, p in enumerate(points) if p.marker]
    desc = (
        f"{len(have)} business dates from {points[0].day} to {points[-1].day}; "
        f"{len(breaches)} beyond the threshold; "
        + (", ".join(f"{p.day} led to a {m}" for i, m in marked for p in [points[i]]) or "no rollback or retrain")
    )
    out = _svg(title, desc)
    base = TOP + plot_h
    out.append(
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="{MUTED}"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="{MUTED}"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{_fmt(hi)}</text>'
        f'<text x="{LEFT - 4}" y="{base}" text-anchor="end">{_fmt(lo)}</text>'
        f'<text x="12" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2:.1f})">{escape(axis)}</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 22}">{escape(points[0].day)}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 22}" text-anchor="end">{escape(points[-1].day)}</text>'
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">business date</text>'
    )
    for i, marker in marked:
        letter = "R" if marker == "rollback" else "T"
        out.append(
            f'<g class="marker {escape(marker)}"><title>{escape(points[i].day)}: led to a {escape(marker)}</title>'
            f'<line x1="{x(i):.1f}" y1="{TOP}" x2="{x(i):.1f}" y2="{base}" stroke="{MARK}" stroke-dasharray="2 2"/>'
            f'<text x="{x(i):.1f}" y="{TOP + 8}" text-anchor="middle" fill="{MARK}">{letter}</text></g>'
        )
    thresholds = [(i, p.threshold) for i, p in enumerate(points) if p.threshold is not None]
    if thresholds:
        path = " ".join(f"{x(i):.1f},{y(t):.1f}" for i, t in thresholds)
        last = thresholds[-1][1]
        out.append(
            f'<polyline class="threshold" points="{path}" fill="none" stroke="{LINE}" stroke-dasharray="5 3"/>'
            f'<text x="{WIDTH - RIGHT}" y="{y(last) - 4:.1f}" text-anchor="end">threshold {_fmt(last)}</text>'
        )
    segment: list[str] = []
    for i, p in enumerate(points):  # a day without a value breaks the line
        if p.value is None:
            if segment:
                out.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="{OK}" stroke-width="1.5"/>')
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(p.value):.1f}")
    if segment:
        out.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="{OK}" stroke-width="1.5"/>')
    for i, p in enumerate(points):
        if p.value is None:
            continue
        colour = BAD if i in breaches else OK
        tip = f"{p.day}: {_fmt(p.value)}" + (f" (threshold {_fmt(p.threshold)})" if p.threshold is not None else "")
        tip += f"; {p.note}" if p.note else ""
        out.append(
            f'<circle cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="{3 if i in breaches else 2}" fill="{colour}">'
            f"<title>{escape(tip)}</title></circle>"
        )
        if i in breaches and p.note:  # name the worst feature where the limit is crossed
            anchor = "end" if x(i) > WIDTH / 2 else "start"
            dx = -6 if anchor == "end" else 6
            out.append(
                f'<text class="named" x="{x(i) + dx:.1f}" y="{y(p.value) + 4:.1f}" text-anchor="{anchor}">'
                f"{escape(p.note.split(',')[0])}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def champion_chart(title: str, steps: Sequence[tuple[datetime, str, str]], until: datetime) -> str | None:
    """The champion's version over time: ``steps`` (when, version, how), oldest first, drawn as a step
    line to ``until``; each level labelled with its version. None without steps."""
    if not steps:
        return None
    until = max(until, steps[-1][0])
    versions = list(dict.fromkeys(v for _, v, _ in steps))
    order = sorted(versions, key=lambda v: (len(v), v))  # numeric-looking versions in their order
    t0, t1 = steps[0][0].timestamp(), max(until.timestamp(), steps[-1][0].timestamp() + 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    level = plot_h / max(1, len(order))

    def x(t: float) -> float:
        return LEFT + (t - t0) / (t1 - t0) * plot_w

    def y(v: str) -> float:
        return TOP + plot_h - (order.index(v) + 0.5) * level

    when = "%Y-%m-%d" if t1 - t0 >= 2 * 86400 else "%Y-%m-%d %H:%M"  # a short history: the hours too
    desc = "; ".join(f"{at:%Y-%m-%d %H:%M} v{v} by {how}" for at, v, how in steps)
    out = _svg(title, desc)
    base = TOP + plot_h
    out.append(
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="{MUTED}"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="{MUTED}"/>'
        f'<text x="12" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2:.1f})">prod version</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 22}">{steps[0][0].strftime(when)}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 22}" text-anchor="end">{until.strftime(when)}</text>'
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">time (UTC)</text>'
    )
    for v in order:
        out.append(f'<text x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end">v{escape(v)}</text>')
    points: list[str] = []
    for i, (at, v, _) in enumerate(steps):
        if i:
            points.append(f"{x(at.timestamp()):.1f},{y(steps[i - 1][1]):.1f}")
        points.append(f"{x(at.timestamp()):.1f},{y(v):.1f}")
    points.append(f"{x(t1):.1f},{y(steps[-1][1]):.1f}")
    out.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{OK}" stroke-width="2"/>')
    for at, v, how in steps:
        colour = MARK if how == "rollback" else OK
        out.append(
            f'<circle cx="{x(at.timestamp()):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}">'
            f"<title>{at:%Y-%m-%d %H:%M} UTC: v{escape(v)} by {escape(how)}</title></circle>"
        )
    out.append("</svg>")
    return "".join(out)

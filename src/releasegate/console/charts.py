"""Inline SVG bar charts of a gate report's figures, drawn on the server (pure; no script, no CDN).

``kpi_chart``: the primary KPI of champion and candidate, and the measured relative delta against the
required one (a marker line). ``psi_chart``: the PSI of each feature against the drift gate's limit;
bars over the limit are drawn in the refusal colour. Each chart carries a ``<title>`` and text labels,
so it reads without colour too.
"""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, BAR, GAP, LABEL = 520, 18, 8, 150
OK, BAD, LINE = "#2f7d4f", "#b3261e", "#1f1f1f"


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _bars(title: str, rows: list[tuple[str, float, str, str]], limit: float | None, limit_label: str) -> str:
    """Horizontal bars (label, value, colour, text); ``limit`` drawn as a vertical line."""
    top = max([v for _, v, _, _ in rows] + [limit or 0.0] + [1e-9]) * 1.15
    span = WIDTH - LABEL - 90
    height = len(rows) * (BAR + GAP) + 34
    out = [
        f'<svg class="chart" role="img" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (label, value, colour, text) in enumerate(rows):
        y = 8 + i * (BAR + GAP)
        w = max(0.0, value) / top * span
        out.append(
            f'<text x="{LABEL - 6}" y="{y + BAR - 5}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{LABEL}" y="{y}" width="{w:.1f}" height="{BAR}" fill="{colour}"/>'
            f'<text x="{LABEL + w + 4:.1f}" y="{y + BAR - 5}">{escape(text)}</text>'
        )
    if limit is not None:
        x = LABEL + limit / top * span
        bottom = len(rows) * (BAR + GAP) + 8
        out.append(
            f'<line x1="{x:.1f}" y1="2" x2="{x:.1f}" y2="{bottom}" stroke="{LINE}" stroke-dasharray="4 3"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{escape(limit_label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def kpi_chart(figures: dict[str, Any]) -> str | None:
    metric = figures.get("primary_metric") or "primary KPI"
    cand, champ = _num(figures.get("candidate_kpi")), _num(figures.get("champion_kpi"))
    delta, need = _num(figures.get("kpi_delta")), _num(figures.get("min_kpi_delta"))
    if cand is None:
        return None
    rows = [(f"candidate {metric}", cand, OK if delta is None or need is None or delta >= need else BAD, f"{cand:.4f}")]
    if champ is not None:
        rows.insert(0, (f"champion {metric}", champ, "#6b6b6b", f"{champ:.4f}"))
    values = _bars(f"{metric}: candidate vs champion", rows, None, "")
    if delta is None or need is None:
        return values
    passed = delta >= need - 1e-12
    gain = _bars(
        f"relative delta {delta:+.2%}, required {need:+.2%}",
        [("delta vs champion", max(delta, 0.0), OK if passed else BAD, f"{delta:+.2%}")],
        need,
        f"required {need:+.2%}",
    )
    return values + gain


def psi_chart(figures: dict[str, Any]) -> str | None:
    psi = figures.get("drift_psi") or {}
    limit = _num(figures.get("max_psi"))
    if not psi:
        return None
    rows = [
        (str(name), float(v), BAD if limit is not None and float(v) > limit else OK, f"{float(v):.4f}")
        for name, v in sorted(psi.items(), key=lambda kv: -float(kv[1]))
    ]
    label = f"limit {limit:.4f}" if limit is not None else ""
    return _bars(f"PSI per feature against the limit {label}", rows, limit, label)


def series_chart(title: str, points: list[tuple[str, float]], limit: float | None, limit_label: str = "") -> str | None:
    """A value per date (e.g. an EOD verdict's max PSI per business date) as a line, ``limit`` as a dashed
    line; points over the limit drawn as dots in the refusal colour. None without points."""
    if not points:
        return None
    height, left, bottom = 160, 48, 24
    top = max([v for _, v in points] + [limit or 0.0] + [1e-9]) * 1.15
    step = (WIDTH - left - 10) / max(1, len(points) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i * step, height - bottom - max(0.0, v) / top * (height - bottom - 8)

    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, (_, v) in enumerate(points)))
    out = [
        f'<svg class="chart" role="img" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<polyline points="{line}" fill="none" stroke="{OK}" stroke-width="1.5"/>'
        f'<text x="{left}" y="{height - 6}">{escape(points[0][0])}</text>'
        f'<text x="{WIDTH - 10}" y="{height - 6}" text-anchor="end">{escape(points[-1][0])}</text>'
        f'<text x="{left - 4}" y="14" text-anchor="end">{top:.3g}</text>'
    ]
    if limit is not None:
        _, y = xy(0, limit)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - 10}" y2="{y:.1f}" stroke="{LINE}" stroke-dasharray="4 3"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(limit_label)}</text>'
        )
        for i, (_, v) in enumerate(points):
            if v > limit:
                x, y = xy(i, v)
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{BAD}"/>')
    out.append("</svg>")
    return "".join(out)

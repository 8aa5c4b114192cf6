"""What an EOD run shows of its result: the flow's return value and its markdown artifact."""

from __future__ import annotations

import json
from typing import Any

from releasegate.services.eod import EodResult


def summary(result: EodResult) -> dict[str, Any]:
    """A compact, JSON-safe view for the flow's return value and artifact."""
    return {
        "model_name": result.model_name,
        "business_date": result.business_date.isoformat(),
        "rows": result.rows,
        "champion_version": result.champion.version,
        "challenger_version": result.challenger.version if result.challenger else None,
        "canary_rows": result.canary_rows,
        "failures": result.served_failures,
        "latency_ms": result.champion.latency_ms,
        "kpi": result.kpi,
        "champion_metric": result.champion.metric,
        "challenger_metric": result.challenger.metric if result.challenger else None,
        "label_source": result.label_source,
        "max_psi": round(result.champion_report.max_psi, 6),
        "shadow": result.comparison.model_dump(mode="json") if result.comparison else None,
        "action": result.verdict.action,
        "reason_code": result.verdict.reason_code,
        "reason": result.verdict.reason,
        "predictions_path": result.predictions_path,
    }


def markdown(result: EodResult) -> str:
    s = summary(result)
    lines = [f"# EOD {s['business_date']}: prod.{s['model_name']}", "", "| field | value |", "|---|---|"]
    lines += [f"| {k} | {json.dumps(v) if isinstance(v, dict) else v} |" for k, v in s.items()]
    lines += ["", "## Checks (champion)", "", "| check | value | threshold | breached |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {c.value} | {c.threshold} | {c.breached} |" for c in result.champion_report.checks]
    if result.challenger_report:
        lines += ["", "## Checks (challenger vs champion)", "", "| check | value | threshold | breached |"]
        lines += ["|---|---|---|---|"]
        lines += [f"| {c.name} | {c.value} | {c.threshold} | {c.breached} |" for c in result.challenger_report.checks]
    return "\n".join(lines) + "\n"

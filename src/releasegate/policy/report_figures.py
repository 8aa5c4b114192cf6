"""The figures an approver looks at, taken from a promotion's dossier and gate report (pure).

The TECH record keeps them beside the gate report (``services.promotion.record_tech``), so the console
draws the primary KPI of candidate vs champion with the required delta and the PSI of each feature
against its limit from the hash-chained log, not from an artifact anyone could edit.
"""

from __future__ import annotations

import re
from typing import Any

from releasegate.policy.gates import GateReport

_METRIC = re.compile(r"^([\w.\-/]+): candidate ")
_FIRST = re.compile(r"\(([\w.\-/]+)=")


def report_figures(dossier: dict[str, Any], report: GateReport) -> dict[str, Any]:
    """``primary_metric``, ``candidate_kpi``, ``champion_kpi``, ``kpi_delta``, ``min_kpi_delta``,
    ``drift_psi`` (feature -> PSI), ``max_psi`` (the limit the drift gate used), ``smoke``."""
    gates = {g.name: g for g in report.gates}
    kpi, drift = gates.get("kpi_delta"), gates.get("drift")
    metric = None
    if kpi is not None:
        found = _METRIC.match(kpi.evidence) or _FIRST.search(kpi.evidence)
        metric = found.group(1) if found else None
    candidate = (dossier.get("candidate") or {}).get("metrics") or {}
    champion = (dossier.get("champion") or {}).get("metrics") or {}
    return {
        "primary_metric": metric,
        "candidate_kpi": candidate.get(metric) if metric else None,
        "champion_kpi": champion.get(metric) if metric else None,
        "kpi_delta": kpi.measured if kpi is not None else None,
        "min_kpi_delta": kpi.threshold if kpi is not None else None,
        "drift_psi": {str(k): float(v) for k, v in (dossier.get("drift_psi") or {}).items()},
        "max_psi": drift.threshold if drift is not None else None,
        "smoke": dossier.get("smoke") or {},
    }

"""One rule for every two-level threshold (PSI, KPI drop), shared by the retrain gateway and the
monitoring decision tree so that the same value never means two things:

* **urgent** when the value *exceeds* the urgent limit (PSI > 0.3, drop > 10 %);
* **plan** when it reaches the plan limit (0.2 ≤ PSI ≤ 0.3, 5 % ≤ drop ≤ 10 %);
* **ok** below it.

Pure; no I/O.
"""

from __future__ import annotations

from typing import Literal

Band = Literal["ok", "plan", "urgent"]


def band(value: float, plan: float, urgent: float) -> Band:
    if value > urgent:
        return "urgent"
    if value >= plan:
        return "plan"
    return "ok"

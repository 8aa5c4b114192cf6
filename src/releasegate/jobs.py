"""What a team's own job calls (``releasegate.submit_candidate``, ``releasegate.already_rejected``): the
front door that builds the process's app (``bootstrap.app()``) and hands it to ``adapters.candidates``."""

from __future__ import annotations

from typing import Any

from releasegate import bootstrap
from releasegate.adapters import candidates


def already_rejected(model: str, flow_run_id: str) -> str | None:
    """The decision id of a candidate this flow run already submitted as failing its checks, else None."""
    return candidates.already_rejected(bootstrap.app(), model, flow_run_id)


def submit_candidate(
    model: str,
    version: str,
    *,
    producer: str,
    checks_ok: bool,
    summary: str,
    flow_run_id: str | None = None,
    trigger: str = "retrain job",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record the job's verdict on ``staging.<model>`` v``version`` and, when ``checks_ok``, put it up for
    promotion. ``trigger`` says why the job ran (the retrain record's ``trigger``; a ``trigger`` in
    ``details`` wins). Returns ``{"decision_id", "promotion"}`` (the intake result, or None when rejected)."""
    return candidates.submit_candidate(
        bootstrap.app(),
        model,
        version,
        producer=producer,
        checks_ok=checks_ok,
        summary=summary,
        flow_run_id=flow_run_id,
        trigger=trigger,
        details=details,
    )

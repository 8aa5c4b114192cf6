"""What a team's own code calls (``releasegate.governed``, ``releasegate.submit_candidate``,
``releasegate.already_rejected``): the front door that hands the process's app (``bootstrap.app``) to the
adapters (``prefect_flows.governed_flow``, ``candidates``). releasegate's own flows use ``governed`` too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from releasegate import bootstrap


def governed(
    deployment: str,
    *,
    project_dir: str | Path | None = None,
    gate: bool = False,
    own_concurrency: bool = False,
    **flow_kwargs: Any,
) -> Callable[[Callable[..., Any]], Any]:
    """A Prefect flow under the deployment's runtime policy and late-run rule, optionally behind the
    capacity gateway (``adapters.prefect_flows.governed_flow``), each run on ``bootstrap.app()``."""
    from releasegate.adapters.prefect_flows import governed_flow

    return governed_flow(
        deployment,
        new_app=bootstrap.app,
        project_dir=project_dir,
        gate=gate,
        own_concurrency=own_concurrency,
        **flow_kwargs,
    )


def already_rejected(model: str, flow_run_id: str) -> str | None:
    """The decision id of a candidate this flow run already submitted as failing its checks, else None."""
    from releasegate.adapters import candidates  # lazily: MLflow is slow to import

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
    from releasegate.adapters import candidates  # lazily: MLflow is slow to import

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

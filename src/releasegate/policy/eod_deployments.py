"""One scheduled EOD deployment per model: what ``releasegate deploy`` adds to prefect.yaml's deployments.

A model whose manifest entry has ``eod: {cron, timezone, active}`` gets the deployment
``eod-scoring/<model key>``: a copy of the ``eod-scoring`` deployment (its entrypoint, work pool, queue
``critical``, tags and runtime policy, concurrency included) with ``model_name`` set to the model and the
model's own schedule. So a team schedules its EOD in its manifest, without editing releasegate's
prefect.yaml; ``eod-scoring`` itself stays the unscheduled deployment for runs started by hand. Pure.
"""

from __future__ import annotations

import copy
from typing import Any

from releasegate.policy.models import ModelManifest
from releasegate.policy.runtime_policy import find_deployment

EOD = "eod-scoring"
GOVERNED_BY = "governed-by:"  # tag of a deployment made from a governed one: the gateway counts it as that one


def eod_deployment_name(model_key: str) -> str:
    """The full Prefect name of a model's EOD deployment (flow ``eod-scoring``, deployment ``<key>``)."""
    return f"{EOD}/{model_key}"


def eod_deployments(doc: dict[str, Any], manifest: ModelManifest) -> list[dict[str, Any]]:
    """The per-model EOD deployments for the prefect.yaml ``doc`` (empty when it declares no
    ``eod-scoring`` or no model has ``eod``). ``ValueError`` when a model's key is already the name of a
    deployment of ``doc`` (``prefect deploy --name`` could not tell the two apart)."""
    try:
        base = find_deployment(doc, EOD)
    except KeyError:
        return []
    taken = {str(d.get("name")) for d in doc.get("deployments") or [] if isinstance(d, dict)}
    out: list[dict[str, Any]] = []
    for model in manifest.models:
        if model.eod is None:
            continue
        if model.key in taken:
            raise ValueError(
                f"models[{model.name}].eod: its EOD deployment would be named {model.key!r}, which "
                f"prefect.yaml already uses for another deployment; rename the model or that deployment"
            )
        dep = copy.deepcopy({k: v for k, v in base.items() if k not in ("name", "description", "schedules")})
        dep["name"] = model.key
        dep["description"] = (
            f"End-of-day scoring of {model.name} ({model.eod.cron}, {model.eod.timezone}), from the model "
            "manifest's eod: entry; made by `releasegate deploy`."
        )
        dep["parameters"] = {**(base.get("parameters") or {}), "model_name": model.name}
        dep["tags"] = [*(base.get("tags") or []), f"model:{model.key}", f"{GOVERNED_BY}{EOD}"]
        dep["schedules"] = [{"cron": model.eod.cron, "timezone": model.eod.timezone, "active": model.eod.active}]
        out.append(dep)
    return out

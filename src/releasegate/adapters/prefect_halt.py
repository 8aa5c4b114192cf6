"""A halted model's schedules in Prefect (``services.halt.Schedules``): paused on a confirmed halt,
turned on again on a confirmed resume.

A schedule starts runs of a model when its own parameters, or its deployment's, say ``model_name: <model>``,
or when its deployment is tagged ``model:<key>`` (the per-model ``eod-scoring/<model>`` deployments of
``releasegate deploy``). Only that schedule is turned off (``active: false``), never the deployment:
a deployment such as ``retrain`` whose schedules carry one model each keeps scheduling the others.
A schedule is named ``<flow>/<deployment>#<schedule id>``; ``pause`` returns the ones it turned off now
(a schedule already off stays off and is not named, so a resume leaves it off). Runs Prefect had
already scheduled before the pause are refused when they start (``adapters.prefect_flows``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect import get_client

from releasegate.slugs import slug


def _model_of(dep: Any, schedule: Any) -> str | None:
    params = {**(dep.parameters or {}), **(getattr(schedule, "parameters", None) or {})}
    return str(params["model_name"]) if params.get("model_name") else None


def _own(schedule: Any) -> dict[str, Any]:
    """The schedule's own parameters, sent again with every change: Prefect 3.8's server empties them
    on a PATCH that leaves them out (seen: a paused ``retrain`` schedule lost its ``model_name``)."""
    return dict(getattr(schedule, "parameters", None) or {})


class PrefectSchedules:
    def pause(self, model: str) -> list[str]:
        out = []
        with get_client(sync_client=True) as client:
            flows = {f.id: f.name for f in client.read_flows()}
            for dep in client.read_deployments():
                tagged = f"model:{slug(model)}" in (dep.tags or [])
                for sch in dep.schedules or []:
                    if not sch.active or not (tagged or _model_of(dep, sch) == model):
                        continue
                    client.update_deployment_schedule(dep.id, sch.id, active=False, parameters=_own(sch))
                    out.append(f"{flows.get(dep.flow_id, '?')}/{dep.name}#{sch.id}")
        return out

    def resume(self, schedules: list[str]) -> list[str]:
        out = []
        with get_client(sync_client=True) as client:
            by_name: dict[str, Any] = {}
            flows = {f.id: f.name for f in client.read_flows()}
            for dep in client.read_deployments():
                by_name[f"{flows.get(dep.flow_id, '?')}/{dep.name}"] = dep
            for name in schedules:
                dep_name, _, schedule_id = name.rpartition("#")
                found = by_name.get(dep_name)
                sch = next((s for s in found.schedules or [] if str(s.id) == schedule_id), None) if found else None
                if found is None or sch is None:
                    continue  # deleted since the halt: nothing to turn on
                client.update_deployment_schedule(found.id, UUID(schedule_id), active=True, parameters=_own(sch))
                out.append(name)
        return out

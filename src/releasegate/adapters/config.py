"""Configuration sources. Each concern is a ``releasegate-config/<name>`` block document (editable in the
Prefect UI, written by ``releasegate infra up``), falling back to ``blocks/<name>.yaml``; an environment
variable naming a YAML file overrides both (tests, one-off runs).

| name               | model                      | file                          | env override                  |
|--------------------|----------------------------|-------------------------------|-------------------------------|
| capacity-policy    | capacity.GatewayConfig     | blocks/capacity_policy.yaml   | RELEASEGATE_CAPACITY_POLICY   |
| gate-policy        | gates.GatePolicy           | blocks/gate_policy.yaml       | RELEASEGATE_GATE_POLICY       |
| approvers          | config.ApproverConfig      | blocks/approvers.yaml         | RELEASEGATE_APPROVERS         |
| retrain-policy     | retrain.RetrainPolicy      | blocks/retrain_policy.yaml    | RELEASEGATE_RETRAIN_POLICY    |
| monitoring-thresholds | monitoring.MonitoringPolicy | blocks/monitoring_thresholds.yaml |
|                    |                            | (env: RELEASEGATE_MONITORING_THRESHOLDS)                      |

Event routes are read from ``blocks/event_routes.yaml`` only (or $RELEASEGATE_EVENT_ROUTES), so that
event intake answers duplicates without any Prefect call.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel

from ..capacity import GatewayConfig
from ..gates import GatePolicy
from ..handshake import Role
from ..intake import DEFAULT_ROUTES, Route
from ..monitoring import MonitoringPolicy
from ..retrain import RetrainPolicy
from . import context

M = TypeVar("M", bound=BaseModel)


class ApproverConfig(BaseModel):
    pm: list[str] = []
    risk: list[str] = []

    def allow_lists(self) -> dict[Role, list[str]]:
        return {Role.pm: list(self.pm), Role.risk: list(self.risk)}


CONFIGS: dict[str, tuple[type[BaseModel], str, str]] = {
    "capacity-policy": (GatewayConfig, "capacity_policy.yaml", "RELEASEGATE_CAPACITY_POLICY"),
    "gate-policy": (GatePolicy, "gate_policy.yaml", "RELEASEGATE_GATE_POLICY"),
    "approvers": (ApproverConfig, "approvers.yaml", "RELEASEGATE_APPROVERS"),
    "retrain-policy": (RetrainPolicy, "retrain_policy.yaml", "RELEASEGATE_RETRAIN_POLICY"),
    "monitoring-thresholds": (MonitoringPolicy, "monitoring_thresholds.yaml", "RELEASEGATE_MONITORING_THRESHOLDS"),
}


def config_file(name: str) -> Path:
    _, filename, env = CONFIGS[name]
    return Path(os.environ.get(env) or context.project_root() / "blocks" / filename)


def from_file(name: str, path: Path | None = None):
    model, _, _ = CONFIGS[name]
    return model.model_validate(yaml.safe_load((path or config_file(name)).read_text()) or {})


def load(name: str, use_block: bool = True):
    """The block document (editable in the UI), else the file; an env override wins over both."""
    model, _, env = CONFIGS[name]
    if use_block and not os.environ.get(env):
        try:
            from .blocks import ReleasegateConfig

            return model.model_validate(ReleasegateConfig.load(name).values)
        except ValueError as exc:
            if "Unable to find block document" not in str(exc):
                raise
    return from_file(name)


def capacity_from_file(path: Path | None = None) -> GatewayConfig:
    return from_file("capacity-policy", path)


def load_gateway_config(use_block: bool = True) -> GatewayConfig:
    return load("capacity-policy", use_block)


@lru_cache(maxsize=8)
def _routes(path: str, mtime: float) -> tuple[Route, ...]:
    doc = yaml.safe_load(Path(path).read_text()) or {}
    return tuple(Route.model_validate(r) for r in doc.get("routes") or [])


def load_routes() -> list[Route]:
    env = os.environ.get("RELEASEGATE_EVENT_ROUTES")
    try:
        path = Path(env) if env else context.project_root() / "blocks" / "event_routes.yaml"
    except FileNotFoundError:
        return list(DEFAULT_ROUTES)
    if not path.is_file():
        return list(DEFAULT_ROUTES)
    return list(_routes(str(path), path.stat().st_mtime))

"""Configuration sources. Each concern is a ``releasegate-config/<name>`` block document (editable in the
Prefect UI, written by ``releasegate infra up``), falling back to ``blocks/<name>.yaml``; an environment
variable naming a YAML file overrides both (tests, one-off runs).

| name               | model                      | file                          | env override                  |
|--------------------|----------------------------|-------------------------------|-------------------------------|
| capacity-policy    | capacity.GatewayConfig     | blocks/capacity_policy.yaml   | RELEASEGATE_CAPACITY_POLICY   |
| gate-policy        | gates.GatePolicy           | blocks/gate_policy.yaml       | RELEASEGATE_GATE_POLICY       |
| approvers          | approvers.ApproverConfig   | blocks/approvers.yaml         | RELEASEGATE_APPROVERS         |
| retrain-policy     | retrain.RetrainPolicy      | blocks/retrain_policy.yaml    | RELEASEGATE_RETRAIN_POLICY    |
| monitoring-thresholds | monitoring.MonitoringPolicy | blocks/monitoring_thresholds.yaml |
|                    |                            | (env: RELEASEGATE_MONITORING_THRESHOLDS)                      |
| models             | models.ModelManifest       | blocks/models.yaml            | RELEASEGATE_MODELS            |

Event routes are read from ``blocks/event_routes.yaml`` only (or $RELEASEGATE_EVENT_ROUTES), so that
event intake answers duplicates without any Prefect call.

The project folder (``blocks/``) is ``releasegate.settings.project_root()``: RELEASEGATE_PROJECT_DIR, else
the folder of prefect.yaml; like the overrides above, this source reads the environment itself.

Every file is read with the strict loader (``releasegate.yamlio``: a duplicated key is refused) and every
model refuses unknown fields. A file or block that is not valid raises ``ConfigError`` naming the file,
the field and the rule (``releasegate.errors``); the CLI prints that message, exit 2, never a traceback.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from releasegate.errors import ConfigError as ConfigError  # re-exported
from releasegate.policy.approvers import ApproverConfig as ApproverConfig  # re-exported
from releasegate.policy.capacity import GatewayConfig
from releasegate.policy.gates import GatePolicy
from releasegate.policy.metrics import Direction
from releasegate.policy.models import ModelManifest, ModelSpec
from releasegate.policy.monitoring import MonitoringPolicy
from releasegate.policy.retrain import RetrainPolicy
from releasegate.policy.routes import DEFAULT_ROUTES, Route
from releasegate.settings import project_root
from releasegate.yamlio import YamlError, load_yaml

M = TypeVar("M", bound=BaseModel)


CONFIGS: dict[str, tuple[type[BaseModel], str, str]] = {
    "capacity-policy": (GatewayConfig, "capacity_policy.yaml", "RELEASEGATE_CAPACITY_POLICY"),
    "gate-policy": (GatePolicy, "gate_policy.yaml", "RELEASEGATE_GATE_POLICY"),
    "approvers": (ApproverConfig, "approvers.yaml", "RELEASEGATE_APPROVERS"),
    "retrain-policy": (RetrainPolicy, "retrain_policy.yaml", "RELEASEGATE_RETRAIN_POLICY"),
    "monitoring-thresholds": (MonitoringPolicy, "monitoring_thresholds.yaml", "RELEASEGATE_MONITORING_THRESHOLDS"),
    "models": (ModelManifest, "models.yaml", "RELEASEGATE_MODELS"),
}


def config_file(name: str) -> Path:
    _, filename, env = CONFIGS[name]
    return Path(os.environ.get(env) or project_root() / "blocks" / filename)


def _field_rule(model: type[BaseModel], err: Any) -> tuple[str, str]:
    loc = err["loc"]
    field = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = f" (allowed here: {', '.join(model.model_fields)})" if len(loc) == 1 else ""
        return field, f"unknown field, not part of this configuration{allowed}; check the spelling"
    return field, err["msg"].removeprefix("Value error, ")


def config_error(
    path: str | Path, exc: ValidationError | YamlError, model: type[BaseModel] | None = None
) -> ConfigError:
    """Turn a pydantic ``ValidationError`` or a ``YamlError`` into a ``ConfigError`` naming path, field, rule."""
    if isinstance(exc, YamlError):
        where = f"line {exc.line}" if exc.line is not None else "(file)"
        field = str(exc.key) if exc.key is not None else where
        return ConfigError(path, field, exc.rule, [(where, exc.rule)])
    problems = [_field_rule(model or BaseModel, e) for e in exc.errors()]
    return ConfigError(path, problems[0][0], problems[0][1], problems)


def _named_models(problems: list[tuple[str, str]], data: Any) -> list[tuple[str, str]]:
    """``models.2.primary_kpi.direction`` -> ``models[credit].primary_kpi.direction``: name the model."""
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return problems
    out = []
    for field, rule in problems:
        parts = field.split(".")
        if len(parts) >= 2 and parts[0] == "models" and parts[1].isdigit() and int(parts[1]) < len(entries):
            entry = entries[int(parts[1])]
            name = entry.get("name") if isinstance(entry, dict) else None
            parts[:2] = [f"models[{name if name else '#' + parts[1]}]"]
            field = ".".join(parts)
        out.append((field, rule))
    return out


def validate_config(model: type[M], data: Any, path: str | Path) -> M:
    try:
        return model.model_validate({} if data is None else data)
    except ValidationError as exc:
        err = config_error(path, exc, model)
        problems = _named_models(err.problems, data)
        raise ConfigError(path, problems[0][0], problems[0][1], problems) from None


def from_file(name: str, path: Path | None = None):
    model, _, _ = CONFIGS[name]
    path = path or config_file(name)
    try:
        data = load_yaml(Path(path))
    except YamlError as exc:
        raise config_error(path, exc) from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot be read ({exc.strerror or exc})") from None
    return validate_config(model, data, path)


def load(name: str, use_block: bool = True):
    """The block document (editable in the UI), else the file; an env override wins over both."""
    model, _, env = CONFIGS[name]
    if use_block and not os.environ.get(env):
        try:
            from releasegate.adapters.blocks import load_config_block

            values = load_config_block(name).values
        except ValueError as exc:
            if "Unable to find block document" not in str(exc):
                raise
        else:
            return validate_config(model, values, f"block releasegate-config/{name}")
    return from_file(name)


def capacity_from_file(path: Path | None = None) -> GatewayConfig:
    return from_file("capacity-policy", path)


def load_gateway_config(use_block: bool = True) -> GatewayConfig:
    return load("capacity-policy", use_block)


class _RoutesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    routes: list[Route] | None = Field(default_factory=list)


@lru_cache(maxsize=8)
def _routes(path: str, mtime: float) -> tuple[Route, ...]:
    try:
        doc = load_yaml(Path(path))
    except YamlError as exc:
        raise config_error(path, exc) from None
    return tuple(validate_config(_RoutesFile, doc, path).routes or [])


def load_routes() -> list[Route]:
    env = os.environ.get("RELEASEGATE_EVENT_ROUTES")
    try:
        path = Path(env) if env else project_root() / "blocks" / "event_routes.yaml"
    except FileNotFoundError:
        return list(DEFAULT_ROUTES)
    if not path.is_file():
        return list(DEFAULT_ROUTES)
    return list(_routes(str(path), path.stat().st_mtime))


def model_spec(model: str) -> ModelSpec | None:
    """The manifest entry of ``model`` (block, else file), None when the manifest does not name it."""
    try:
        manifest: ModelManifest = load("models")
    except ConfigError as exc:
        if "cannot be read" in exc.rule and not os.environ.get("RELEASEGATE_MODELS"):
            return None  # no manifest file in this project: every model on the global defaults
        raise
    return manifest.get(model)


def gate_policy_for(model: str, use_block: bool = True) -> GatePolicy:
    """The gate policy with the model's own primary KPI (metric, direction, minimum gain) when the
    manifest names the model; the global ``gate-policy`` otherwise."""
    policy: GatePolicy = load("gate-policy", use_block)
    spec = model_spec(model)
    if spec is None:
        return policy
    kpi = spec.primary_kpi
    return policy.model_copy(
        update={
            "primary_metric": kpi.metric,
            "higher_is_better": kpi.better is Direction.higher_better,
            "min_kpi_delta": kpi.min_delta,
            "guards": list(spec.guards),
            **drift_overrides(spec),
        }
    )


def drift_overrides(spec: ModelSpec) -> dict[str, Any]:
    """The gate-policy fields the model's own ``drift`` block sets (the others keep the global values)."""
    d = spec.drift
    if d is None:
        return {}
    pairs = (("max_psi", d.max_psi), ("drift_false_alarm_rate", d.false_alarm_rate), ("drift_min_rows", d.min_rows))
    return {k: v for k, v in pairs if v is not None}

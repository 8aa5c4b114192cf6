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
| models             | models.ModelManifest       | blocks/models.yaml            | RELEASEGATE_MODELS            |

Event routes are read from ``blocks/event_routes.yaml`` only (or $RELEASEGATE_EVENT_ROUTES), so that
event intake answers duplicates without any Prefect call.

Every file is read with the strict loader (``releasegate.yamlio``: a duplicated key is refused) and every
model refuses unknown fields. A file or block that is not valid raises ``ConfigError`` naming the file,
the field and the rule; it is the ``ClickException`` typer catches (exit 2), so a CLI command that loads
configuration prints that message instead of a traceback.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from releasegate import bootstrap
from releasegate.policy.capacity import GatewayConfig
from releasegate.policy.gates import GatePolicy
from releasegate.policy.handshake import Role
from releasegate.policy.metrics import Direction
from releasegate.policy.models import ModelManifest, ModelSpec
from releasegate.policy.monitoring import MonitoringPolicy
from releasegate.policy.retrain import RetrainPolicy
from releasegate.services.intake import DEFAULT_ROUTES, Route
from releasegate.yamlio import YamlError, load_yaml

# The ClickException the CLI catches and prints as a message: typer >= 0.2x vendors click as typer._click.
if TYPE_CHECKING:  # checked against the installed typer
    from typer._click.exceptions import ClickException as _CliMessage
else:
    try:
        from typer._click.exceptions import ClickException as _CliMessage
    except ImportError:  # older typer runs on click itself
        from click.exceptions import ClickException as _CliMessage

M = TypeVar("M", bound=BaseModel)


class ApproverConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pm: list[str] = []
    risk: list[str] = []
    compliance: list[str] = []  # COMPLIANCE_GATE_PASS, for models of risk_tier "high"
    exceptions: list[str] = []  # who may grant a gate exception (never the person who asked for it)
    overrides: list[str] = []  # who may override a deferral (start a deferred run now, with a ticket)
    # Each approver's Ed25519 public key (hex, as `releasegate keys init` prints it): a prod promotion
    # takes signed approvals only (``policy.signatures``).
    keys: dict[str, str] = {}

    @field_validator("keys")
    @classmethod
    def _keys_are_ed25519(cls, keys: dict[str, str]) -> dict[str, str]:
        from releasegate.policy.signatures import parse_public_key

        for name, text in keys.items():
            parse_public_key(text, f"keys.{name}")
        return keys

    def allow_lists(self) -> dict[Role, list[str]]:
        return {Role.pm: list(self.pm), Role.risk: list(self.risk), Role.compliance: list(self.compliance)}


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
    return Path(os.environ.get(env) or bootstrap.project_root() / "blocks" / filename)


class ConfigError(_CliMessage, ValueError):
    """A configuration file or block releasegate cannot accept: ``path`` (file or block), ``field``, ``rule``.

    ``problems`` holds every (field, rule) found; the message lists them all and says what to do."""

    exit_code = 2

    def __init__(self, path: str | Path, field: str | None, rule: str, problems: list[tuple[str, str]] | None = None):
        self.path, self.field, self.rule = str(path), field, rule
        self.problems = problems or [(field or "(file)", rule)]
        lines = [f"{f}: {r}" for f, r in self.problems]
        body = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  - " + "\n  - ".join(lines)
        super().__init__(f"invalid configuration {self.path}: {body}\nFix it and run the command again.")


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
        path = Path(env) if env else bootstrap.project_root() / "blocks" / "event_routes.yaml"
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
        }
    )

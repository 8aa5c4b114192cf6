"""The model manifest: what a team declares about each model releasegate governs (``blocks/models.yaml``,
saved as the block ``releasegate-config/models``).

Per model: its registry names per environment, its primary KPI (metric, direction, minimum relative
gain over the champion), optional guard metrics, criticality and risk tier, the task and how to
predict, where a business date's inputs and labels come from, the retrain deployment and approvers.
Everything refuses unknown fields; a refusal names the model, the field and the rule (the loader,
``adapters.config``, turns ``models.<i>`` into ``models[<name>]``). Pure: no I/O here; the data sources
are read by an adapter.
"""

from __future__ import annotations

import re
import string
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from releasegate.policy.calendar import BusinessCalendar
from releasegate.policy.drift import DriftSettings
from releasegate.policy.metrics import Direction, direction_of
from releasegate.policy.triggers import CronSchedule, IanaTimezone
from releasegate.slugs import slug

NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$"  # no '.', which separates environment and model
ENTRYPOINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def manifest_field(model: str, field: str) -> str:
    """How a refusal names a manifest field: ``models[<name>].<field>`` (the list index means nothing)."""
    return f"models[{model}].{field}"


class Criticality(StrEnum):
    standard = "standard"
    critical = "critical"  # shadow / canary evidence is mandatory before a promotion


class RiskTier(StrEnum):
    standard = "standard"
    high = "high"  # the handshake adds COMPLIANCE after RISK


class Task(StrEnum):
    classification = "classification"
    regression = "regression"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Kpi(_Strict):
    metric: str = Field(min_length=1)
    direction: Direction | None = Field(default=None, description="higher or lower; default the metric catalogue's")
    min_delta: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.02, description="relative gain over the champion in the metric's direction (+2 %)"
    )

    @model_validator(mode="after")
    def _known_direction(self) -> Self:
        direction_of(self.metric, self.direction)  # refuses a metric of unknown direction
        return self

    @property
    def better(self) -> Direction:
        return direction_of(self.metric, self.direction)


class GuardMetric(_Strict):
    """A metric the candidate must keep within ``limit`` (absolute), e.g. ``max_latency_ms <= 50``."""

    metric: str = Field(min_length=1)
    direction: Direction | None = None
    limit: float

    @model_validator(mode="after")
    def _known_direction(self) -> Self:
        direction_of(self.metric, self.direction)
        return self


class DataSource(_Strict):
    """A business date's data: ``uri`` (Parquet or CSV path/URI template with ``{business_date}``), or
    ``entrypoint`` (``package.module:function``, called with the business date, returns a DataFrame)."""

    uri: str | None = None
    entrypoint: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.uri is None) == (self.entrypoint is None):
            raise ValueError("give exactly one of uri or entrypoint")
        if self.uri is not None:
            if "{business_date}" not in self.uri:
                raise ValueError("uri must contain {business_date}, the date the data is for")
            if not self.uri.split("?")[0].endswith((".parquet", ".csv")):
                raise ValueError("uri must name a .parquet or .csv file")
        if self.entrypoint is not None and not ENTRYPOINT.match(self.entrypoint):
            raise ValueError("entrypoint must look like package.module:function")
        return self


RETRAIN_PLACEHOLDERS = ("model_name", "version", "trigger", "reason", "reason_code", "business_date")
DEFAULT_RETRAIN_DEPLOYMENT = "retrain-job/retrain-job"  # the built-in demo model's job


class RetrainJob(_Strict):
    """The model's own retrain deployment (``flow-name/deployment-name``), called as a child run, with
    parameter templates over ``RETRAIN_PLACEHOLDERS`` (``{model_name}``, ``{version}``, ``{trigger}``,
    ``{reason}``, ``{reason_code}``, ``{business_date}``)."""

    deployment: str = Field(pattern=r"^[^/\s]+/[^/\s]+$")
    parameters: dict[str, str] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _known_placeholders(cls, v: dict[str, str]) -> dict[str, str]:
        for key, template in v.items():
            try:
                names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
            except ValueError as exc:
                raise ValueError(f"parameters.{key}: {exc}") from None
            unknown = [n for n in names if n not in RETRAIN_PLACEHOLDERS]
            if unknown:
                raise ValueError(
                    f"parameters.{key}: unknown placeholder(s) {', '.join(unknown)} "
                    f"(known: {', '.join(RETRAIN_PLACEHOLDERS)})"
                )
        return v


def retrain_call(spec: ModelSpec | None, values: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The deployment to call for a retrain and its parameters: the model's own job from the manifest,
    else the built-in ``retrain-job`` with ``model_name`` and ``reason``."""
    if spec is None or spec.retrain is None:
        return DEFAULT_RETRAIN_DEPLOYMENT, {"model_name": values["model_name"], "reason": values["reason"]}
    filled = {k: t.format_map(values) for k, t in spec.retrain.parameters.items()}
    return spec.retrain.deployment, filled


class EodSchedule(_Strict):
    """When the model's end-of-day scoring runs: ``releasegate deploy`` makes the deployment
    ``eod-scoring/<model key>`` with this schedule (queue ``critical``, eod-scoring's runtime policy)."""

    cron: str
    timezone: IanaTimezone = "UTC"
    active: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        try:
            CronSchedule(cron=v)  # 5 fields that parse
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return v


class ModelApprovers(_Strict):
    pm: list[str] = Field(default_factory=list)
    risk: list[str] = Field(default_factory=list)
    compliance: list[str] = Field(default_factory=list)


class ModelSpec(_Strict):
    name: str = Field(pattern=NAME)
    registry: dict[str, str] = Field(
        default_factory=dict, description="environment -> registered model name template (default `{env}.{model}`)"
    )
    primary_kpi: Kpi
    guards: list[GuardMetric] = Field(default_factory=list)
    criticality: Criticality = Criticality.standard
    risk_tier: RiskTier = RiskTier.standard
    task: Task = Task.classification
    predict: str | None = Field(
        default=None, description="`predict` or `predict_proba:<column>`; default from the task"
    )
    label_column: str = "label"
    current_inputs: DataSource | None = None
    labels: DataSource | None = None
    retrain: RetrainJob | None = None
    eod: EodSchedule | None = Field(
        default=None, description="its scheduled EOD; unset: none (runs of eod-scoring with model_name only)"
    )
    approvers: ModelApprovers | None = Field(
        default=None, description="its own allow-lists; unset: the global lists of the approvers config"
    )
    calendar: BusinessCalendar = Field(
        default_factory=BusinessCalendar,
        description="the dates its data exists for: backfill, EOD and the newest inputs follow it",
    )
    owners: list[str] = Field(default_factory=list, description="who owns the model: never approves its promotions")
    drift: DriftSettings | None = Field(
        default=None, description="its drift rule (max_psi, false_alarm_rate, min_rows); unset: gate_policy.yaml"
    )

    @model_validator(mode="before")
    @classmethod
    def _removed_fields(cls, data: object) -> object:
        if isinstance(data, dict) and "scoring_deployment" in data:
            raise ValueError(
                "scoring_deployment was removed: give eod: {cron, timezone} instead, and `releasegate deploy` "
                "creates the model's own EOD deployment eod-scoring/<model>"
            )
        return data

    @field_validator("registry")
    @classmethod
    def _templates(cls, v: dict[str, str]) -> dict[str, str]:
        for env, template in v.items():
            if not template.strip():
                raise ValueError(f"registry.{env}: give a registered model name or a template")
        return v

    @field_validator("predict")
    @classmethod
    def _predict(cls, v: str | None) -> str | None:
        if v is not None and v != "predict" and not re.fullmatch(r"predict_proba:\d+", v):
            raise ValueError("predict must be 'predict' or 'predict_proba:<column index>'")
        return v

    def registered_name(self, env: str) -> str:
        return self.registry.get(env, "{env}.{model}").format(env=env, model=self.name)

    @property
    def prediction(self) -> str:
        return self.predict or ("predict_proba:1" if self.task is Task.classification else "predict")

    @property
    def key(self) -> str:
        """The model's Prefect key part (artifact keys allow only ``[a-z0-9-]``)."""
        return slug(self.name)


class ModelManifest(_Strict):
    models: list[ModelSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names: dict[str, str] = {}
        keys: dict[str, str] = {}
        for m in self.models:
            for taken, seen, what in ((m.name, names, "name"), (m.key, keys, "key (its name as a slug)")):
                if taken in seen:
                    raise ValueError(f"model {m.name!r}: {what} {taken!r} is already used by {seen[taken]!r}")
                seen[taken] = m.name
        return self

    def get(self, name: str) -> ModelSpec | None:
        return next((m for m in self.models if m.name == name), None)

    def require(self, name: str) -> ModelSpec:
        spec = self.get(name)
        if spec is None:
            known = ", ".join(m.name for m in self.models) or "none"
            raise KeyError(
                f"model {name!r} is not in the model manifest (known: {known}); add it to blocks/models.yaml"
            )
        return spec

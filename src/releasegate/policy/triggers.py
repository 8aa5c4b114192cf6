"""Trigger contracts: every run starts by a schedule, an event or a person, and each has a contract.

* ``ScheduleTrigger`` — cron or interval, an IANA timezone, ``effective_from``.
* ``EventEnvelope`` — ``event_id``, ``event_type`` written ``name@vN`` and looked up in
  ``EVENT_SCHEMAS`` (unknown name or version: refused), ``occurred_at`` (timezone-aware), ``producer``,
  ``idempotency_key`` and a ``payload`` validated against that type's schema.
* ``ManualTrigger`` — ``requested_by``, ``reason_code``, ``ticket_ref``, ``approved_at`` and the
  ``target_environment``; a manual run against prod needs both ticket and approval.

Refusals are pydantic ``ValidationError``s whose location names the field and whose message names the
rule. Pure module: no I/O, no clock.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from releasegate.policy.schedule_rules import DstRule, dst_target, occurrence_at

NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be timezone-aware (add an offset such as Z or +01:00)")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


def _iana(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"{value!r} is not an IANA timezone (e.g. Europe/Zurich)") from exc
    return value


IanaTimezone = Annotated[str, AfterValidator(_iana)]


# --------------------------------------------------------------------------- schedule trigger
class CronSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["cron"] = "cron"
    cron: NonBlank

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError(f"{v!r} is not a 5-field cron expression (minute hour day month weekday)")
        try:
            CronSim(v, datetime(2026, 1, 1))
        except (CronSimError, ValueError, KeyError, IndexError) as exc:
            raise ValueError(f"{v!r} is not a valid cron expression: {exc}") from exc
        return v


class IntervalSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["interval"] = "interval"
    interval_seconds: Annotated[int, Field(ge=60, le=366 * 86400)]


class ScheduleTrigger(BaseModel):
    """A deployment started by the clock."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deployment_id: NonBlank
    schedule: Annotated[CronSchedule | IntervalSchedule, Field(discriminator="kind")]
    timezone: IanaTimezone
    effective_from: AwareDatetime
    dst: DstRule = DstRule.first  # a cron time in the skipped or repeated hour (policy.schedule_rules)

    def next_runs(self, after: datetime, count: int = 1) -> list[datetime]:
        """The next ``count`` fire times after ``after`` (UTC), never before ``effective_from``. A cron time
        the clocks skip or repeat runs as ``dst`` says, the rule the run-start check applies
        (``schedule_rules.dst_target``): with ``first``, a 02:30 that does not exist runs when the clocks
        jump (03:00), a repeated one at its first pass; with ``skip`` that day has no run."""
        tz = ZoneInfo(self.timezone)
        start = max(_aware(after), self.effective_from).astimezone(tz)
        if isinstance(self.schedule, CronSchedule):
            after_utc = start.astimezone(UTC)
            it = CronSim(self.schedule.cron, start.replace(tzinfo=None) - timedelta(hours=3))
            out: list[datetime] = []
            while len(out) < count:
                at = dst_target(occurrence_at(next(it), self.timezone), self.dst)
                if at is not None and at >= after_utc and (not out or at > out[-1]):
                    out.append(at)
            return out
        step = timedelta(seconds=self.schedule.interval_seconds)
        anchor = self.effective_from
        elapsed = max(timedelta(0), start - anchor)
        first = anchor + step * -(-elapsed // step)
        return [(first + i * step).astimezone(UTC) for i in range(count)]


# --------------------------------------------------------------------------- event trigger
class Environment(StrEnum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


class PartitionArrivedV1(BaseModel):
    """``data.partition.arrived@v1``: a dataset's partition for a business date has landed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dataset: NonBlank
    business_date: date


class ModelVersionCreatedV1(BaseModel):
    """``registry.model_version.created@v1``: a model version was registered."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model_name: NonBlank
    version: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,9}$")]
    source_environment: Environment


class StagingVersionValidatedV1(BaseModel):
    """``registry.staging_version.validated@v1``: a staging version passed its checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model_name: NonBlank
    version: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,9}$")]


class MonitoringRollbackRequestedV1(BaseModel):
    """``monitoring.rollback.requested@v1``: the EOD monitoring verdict asks for a rollback.

    The monitoring decision's id travels as the event id, not in the payload: a retried EOD run with the
    same verdict on the same version then sends an identical payload and is answered as a duplicate;
    ``version`` is the version judged, so a rollback never acts on a version that moved meanwhile."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model_name: NonBlank
    business_date: date
    method: Literal["full", "canary"]
    version: Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,9}$")]  # the version judged
    reason_code: NonBlank
    reason: NonBlank


class MonitoringRetrainRequestedV1(BaseModel):
    """``monitoring.retrain.requested@v1``: the EOD monitoring verdict asks for a retrain."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    model_name: NonBlank
    business_date: date
    trigger: Literal["drift", "kpi"]
    urgency: Literal["urgent", "planned"]
    reason_code: NonBlank


# The registry of versioned event schemas: name -> version -> payload model.
EVENT_SCHEMAS: dict[str, dict[int, type[BaseModel]]] = {
    "data.partition.arrived": {1: PartitionArrivedV1},
    "registry.model_version.created": {1: ModelVersionCreatedV1},
    "registry.staging_version.validated": {1: StagingVersionValidatedV1},
    "monitoring.rollback.requested": {1: MonitoringRollbackRequestedV1},
    "monitoring.retrain.requested": {1: MonitoringRetrainRequestedV1},
}

EVENT_TYPE_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+)@v(?P<version>[1-9][0-9]{0,3})$")


def parse_event_type(event_type: str) -> tuple[str, int]:
    m = EVENT_TYPE_RE.match(event_type)
    if not m:
        raise ValueError(f"{event_type!r} must be written name@vN, e.g. data.partition.arrived@v1")
    return m["name"], int(m["version"])


def payload_schema(event_type: str) -> type[BaseModel]:
    name, version = parse_event_type(event_type)
    versions = EVENT_SCHEMAS.get(name)
    if versions is None:
        raise ValueError(f"unknown event type {name!r}; known: {', '.join(sorted(EVENT_SCHEMAS))}")
    schema = versions.get(version)
    if schema is None:
        known = ", ".join(f"v{v}" for v in sorted(versions))
        raise ValueError(f"unknown version v{version} of {name!r}; known: {known}")
    return schema


class EventEnvelope(BaseModel):
    """An event that may start a run. ``payload`` is validated against ``event_type``'s schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: NonBlank
    event_type: NonBlank
    occurred_at: AwareDatetime
    producer: NonBlank
    idempotency_key: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    payload: dict[str, Any]

    @field_validator("event_type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        payload_schema(v)
        return v

    @model_validator(mode="after")
    def _valid_payload(self) -> EventEnvelope:
        schema = payload_schema(self.event_type)
        validated = schema.model_validate(self.payload)
        object.__setattr__(self, "payload", validated.model_dump(mode="json"))
        return self

    def typed_payload(self) -> BaseModel:
        return payload_schema(self.event_type).model_validate(self.payload)


# --------------------------------------------------------------------------- manual trigger
class ReasonCode(StrEnum):
    hotfix = "hotfix"
    recovery = "recovery"
    governance_run = "governance_run"
    backfill = "backfill"
    other = "other"


class ManualTrigger(BaseModel):
    """A run started by a person. Against prod it needs a ticket and a documented approval.

    Pass ``context={"now": <aware datetime>}`` to ``model_validate`` to refuse approvals dated in the
    future.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    requested_by: NonBlank
    reason_code: ReasonCode
    ticket_ref: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    approved_at: AwareDatetime | None = None
    target_environment: Environment = Environment.dev

    @field_validator("ticket_ref")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("approved_at")
    @classmethod
    def _not_future(cls, v: datetime | None, info: ValidationInfo) -> datetime | None:
        now = (info.context or {}).get("now")
        if v is not None and now is not None and v > now + timedelta(minutes=5):
            raise ValueError(f"approval cannot lie in the future (approved_at {v.isoformat()})")
        return v

    @model_validator(mode="after")
    def _prod_needs_approval(self) -> ManualTrigger:
        if self.target_environment is Environment.prod:
            missing = [n for n in ("ticket_ref", "approved_at") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"a manual run against prod needs {' and '.join(missing)} (documented approval)")
        return self


def local_business_date(when: datetime, timezone: str = "Europe/Zurich") -> date:
    """The business date of an instant: its calendar date in the desk's timezone."""
    return _aware(when).astimezone(ZoneInfo(timezone)).date()


def previous_weekday(day: date) -> date:
    d = day - timedelta(days=1)
    while d.weekday() >= 5:
        d -= timedelta(days=1)
    return d

"""The capacity gateway's configuration: the pool, its queues (priority, cap), the deployments it
gates, the admission rule, backoff, windows and the deferral SLA. The rule itself is in ``capacity``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from releasegate.policy.triggers import NonBlank
from releasegate.policy.windows import Window


class QueueConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: NonBlank
    priority: Annotated[int, Field(ge=1)]
    concurrency_limit: Annotated[int, Field(ge=1)]


class DeploymentGate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    queue: NonBlank
    upstreams: list[str] = Field(default_factory=list)
    # whether its runs ask the gateway before their body starts (eod, backfill, gate=True flows). A gated
    # run holds capacity once admitted (a leased slot); before that it is only *starting*. Runs of
    # deployments that never ask (sweeper, watcher, rollback...) hold capacity while Pending or Running.
    gated: bool = True


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    pool_name: NonBlank = "releasegate"
    pool_concurrency_limit: Annotated[int, Field(ge=1)] = 4
    queues: list[QueueConfig]
    deployments: dict[str, DeploymentGate] = Field(default_factory=dict)
    priority_window_minutes: Annotated[int, Field(ge=0)] = 15
    admission: Literal["priority_window", "reservation"] = "reservation"
    reservation_horizon_minutes: Annotated[int, Field(ge=0)] = 240
    backoff_seconds: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [60, 120, 300, 600])
    windows: list[Window] = Field(default_factory=list)
    sla_alert_minutes: Annotated[int, Field(ge=1)] = 30
    sla_incident_minutes: Annotated[int, Field(ge=1)] = 60

    @model_validator(mode="after")
    def _consistent(self) -> GatewayConfig:
        names = {q.name for q in self.queues}
        for dep, gate in self.deployments.items():
            if gate.queue not in names:
                raise ValueError(f"deployments.{dep}.queue: {gate.queue!r} is not one of the queues {sorted(names)}")
        if self.sla_incident_minutes <= self.sla_alert_minutes:
            raise ValueError("sla_incident_minutes must be greater than sla_alert_minutes")
        return self

    def queue(self, name: str) -> QueueConfig:
        for q in self.queues:
            if q.name == name:
                return q
        raise KeyError(f"unknown work queue {name!r}")

    def backoff(self, attempts: int) -> timedelta:
        steps = self.backoff_seconds
        return timedelta(seconds=steps[min(attempts, len(steps) - 1)])

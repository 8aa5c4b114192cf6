"""A run of the pool as the capacity gateway sees it: running, pending, scheduled or starting.

Its own module so that ``policy.capacity`` (the gateway) and ``policy.reservations`` (the reservation
rule's plan, which ``capacity`` consults) both read it without importing each other. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class ActiveRun(BaseModel):
    model_config = ConfigDict(frozen=True)
    flow_run_id: str
    deployment: str | None
    queue: str | None
    # starting: a gated run deciding at the gateway (Pending or Running in Prefect, no slot yet): it holds
    # no capacity, but a higher-priority one out-ranks lower runs as if due now
    state: Literal["running", "pending", "scheduled", "starting"]
    expected_start: datetime | None = None
    expected_end: datetime | None = None  # a running run: when it is expected to free its slot
    expected_seconds: float | None = None  # a scheduled run: how long its reservation lasts

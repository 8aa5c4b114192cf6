"""Prefect events releasegate emits (incidents, SLA escalations): the one place services reach them."""

from __future__ import annotations

from prefect.events import emit_event

__all__ = ["emit_event"]

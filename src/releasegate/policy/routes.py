"""Event routes: which deployment an event starts, with which parameters (``blocks/event_routes.yaml``).

Pure rules over the event contract (``policy.triggers.EventEnvelope``); intake (``services.intake``) uses
them, the configuration loader (``adapters.config``) validates the file against ``Route``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from releasegate.policy.triggers import EventEnvelope

__all__ = ["DEFAULT_ROUTES", "Route", "render_parameters"]


class Route(BaseModel):
    """Start ``deployment`` for ``event_type`` when the payload has every ``match`` value; parameters are
    literals or ``{{ payload.<field> }}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event_type: str
    deployment: Annotated[str, Field(min_length=1, max_length=200)]  # = event_intake.deployment
    match: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)

    def fits(self, event: EventEnvelope) -> bool:
        return event.event_type == self.event_type and all(
            str(event.payload.get(k)) == str(v) for k, v in self.match.items()
        )


DEFAULT_ROUTES = [
    Route(
        event_type="data.partition.arrived@v1",
        deployment="backfill",
        parameters={"start_date": "{{ payload.business_date }}", "end_date": "{{ payload.business_date }}"},
    ),
]

_TEMPLATE = re.compile(r"^\{\{\s*payload\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")


def render_parameters(route: Route, event: EventEnvelope) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in route.parameters.items():
        m = _TEMPLATE.match(value) if isinstance(value, str) else None
        out[name] = event.payload[m.group(1)] if m else value
    return out

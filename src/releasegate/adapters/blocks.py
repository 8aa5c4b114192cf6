"""releasegate's Prefect block types (configuration operators can edit in the Prefect UI).

Defaults live as YAML in the repository's ``blocks/`` folder; ``releasegate infra up`` saves them as
block documents, and flows read the block, falling back to the file when it is missing.
"""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from pydantic import Field


class CapacityPolicyBlock(Block):
    """Capacity gateway policy: pool and queue caps, priority window, backoff, windows, SLA."""

    _block_type_name = "releasegate capacity policy"
    _block_type_slug = "releasegate-capacity-policy"
    _description = "releasegate capacity gateway: caps, priorities, change freezes, maintenance windows, SLA."

    policy: dict[str, Any] = Field(default_factory=dict, description="releasegate.capacity.GatewayConfig as JSON")

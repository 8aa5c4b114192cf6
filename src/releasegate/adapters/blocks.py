"""releasegate's Prefect block type: configuration operators can edit in the Prefect UI.

One block type, ``releasegate-config``, with one document per concern (``capacity-policy``,
``gate-policy``, ``approvers``). Defaults live as YAML in the repository's ``blocks/`` folder;
``releasegate infra up`` saves them as block documents, and flows read the block, falling back to the
file when it is missing. The values are validated by the matching pydantic model on every read.
"""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from pydantic import Field


class ReleasegateConfig(Block):
    """A releasegate configuration document (validated by releasegate on every read)."""

    _block_type_name = "releasegate config"
    _block_type_slug = "releasegate-config"
    _description = "releasegate configuration: capacity policy, gate policy, approver allow-lists."

    values: dict[str, Any] = Field(default_factory=dict, description="The configuration as JSON")


def load_config_block(name: str) -> ReleasegateConfig:
    """``ReleasegateConfig.load(name)`` from synchronous code (raises ``ValueError`` when missing)."""
    block = ReleasegateConfig.load(name)
    # Block.load dispatches on the caller: in sync code it runs the sync implementation, not a coroutine.
    assert isinstance(block, ReleasegateConfig)
    return block

"""Configuration sources: the capacity policy (Prefect JSON block, else blocks/capacity_policy.yaml) and
the event routes (blocks/event_routes.yaml, or $RELEASEGATE_EVENT_ROUTES)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml

from ..capacity import GatewayConfig
from ..intake import DEFAULT_ROUTES, Route
from . import context

CAPACITY_BLOCK = "default"  # document name of the releasegate-capacity-policy block


def capacity_file() -> Path:
    return Path(
        os.environ.get("RELEASEGATE_CAPACITY_POLICY") or context.project_root() / "blocks" / "capacity_policy.yaml"
    )


def capacity_from_file(path: Path | None = None) -> GatewayConfig:
    return GatewayConfig.model_validate(yaml.safe_load((path or capacity_file()).read_text()))


def load_gateway_config(use_block: bool = True) -> GatewayConfig:
    """The block saved by `infra up` (editable in the UI), else the file."""
    if use_block and not os.environ.get("RELEASEGATE_CAPACITY_POLICY"):
        try:
            from .blocks import CapacityPolicyBlock

            return GatewayConfig.model_validate(CapacityPolicyBlock.load(CAPACITY_BLOCK).policy)
        except ValueError as exc:
            if "Unable to find block document" not in str(exc):
                raise
    return capacity_from_file()


@lru_cache(maxsize=8)
def _routes(path: str, mtime: float) -> tuple[Route, ...]:
    doc = yaml.safe_load(Path(path).read_text()) or {}
    return tuple(Route.model_validate(r) for r in doc.get("routes") or [])


def load_routes() -> list[Route]:
    env = os.environ.get("RELEASEGATE_EVENT_ROUTES")
    try:
        path = Path(env) if env else context.project_root() / "blocks" / "event_routes.yaml"
    except FileNotFoundError:
        return list(DEFAULT_ROUTES)
    if not path.is_file():
        return list(DEFAULT_ROUTES)
    return list(_routes(str(path), path.stat().st_mtime))

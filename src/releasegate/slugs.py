"""Prefect keys derived from model names: artifact keys allow only ``[a-z0-9-]``."""

from __future__ import annotations

import re


def slug(name: str) -> str:
    """Lower case; every run of characters outside ``[a-z0-9]`` becomes one ``-`` (``diabetes_b`` ->
    ``diabetes-b``)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def artifact_key(prefix: str, model: str) -> str:
    return f"{prefix}-{slug(model)}"

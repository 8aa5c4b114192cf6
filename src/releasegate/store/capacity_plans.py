"""The last capacity plan (``releasegate capacity plan``), kept as a JSON file in the releasegate home:
the pool it recommends is what `policy check`, `infra up` and the deferral storm incidents quote."""

from __future__ import annotations

import json
from pathlib import Path

PLAN_FILE = "capacity-plan.json"


def plan_path(home: Path) -> Path:
    return home / PLAN_FILE


def save_plan(home: Path, plan_json: str) -> Path:
    path = plan_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plan_json)
    return path


def last_recommendation(home: Path) -> int | None:
    """The recommended pool of the last plan saved in ``home``, if any."""
    try:
        value = json.loads(plan_path(home).read_text()).get("recommended_pool_cap")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None

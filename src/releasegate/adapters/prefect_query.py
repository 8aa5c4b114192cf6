"""Small helpers over Prefect's client that Prefect does not offer itself."""

from __future__ import annotations

from typing import Any

PAGE = 200  # the API refuses a larger limit


def read_all_flow_runs(client, max_runs: int = 100_000, **filters: Any) -> list:
    """Every flow run matching the filters, page by page (the API caps a page at 200)."""
    runs: list = []
    while len(runs) < max_runs:
        page = client.read_flow_runs(limit=PAGE, offset=len(runs), **filters)
        runs.extend(page)
        if len(page) < PAGE:
            break
    return runs

"""Prefect global concurrency limits releasegate relies on: one promotion per model, one alias change
per model. Taken by the flows with ``concurrency(name, occupy=1, strict=True)``."""

from __future__ import annotations

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound


def _ensure_limit(name: str) -> str:
    """A Prefect global concurrency limit of 1, created when missing and re-activated when someone
    deactivated it in the UI: an inactive limit admits everyone, and releasegate's one-at-a-time rule
    must not depend on a UI toggle. Callers take it with ``concurrency(name, strict=True)``."""
    with get_client(sync_client=True) as c:
        try:
            limit = c.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                c.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:  # created concurrently
                pass
            limit = c.read_global_concurrency_limit_by_name(name)
        if not limit.active or limit.limit != 1 or (limit.slot_decay_per_second or 0) != 0:
            c.update_global_concurrency_limit(
                name, GlobalConcurrencyLimitUpdate(active=True, limit=1, slot_decay_per_second=0)
            )
    return name


def ensure_model_lock(model: str) -> str:
    """One promotion per model at a time (held for the whole promotion, approvals included)."""
    return _ensure_limit(f"promotion-{model}")


def ensure_alias_lock(model: str) -> str:
    """One alias change per model at a time: the binary step of a promotion and every rollback take it.

    Separate from the promotion lock, which is held while a promotion waits (up to a day) for approvals:
    an emergency rollback must not wait behind that, but it must never interleave with alias moves."""
    return _ensure_limit(f"aliases-{model}")

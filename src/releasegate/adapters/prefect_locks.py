"""Prefect global concurrency limits releasegate relies on: one promotion per model, one alias change
per model. Taken by the flows with ``hold(name)``: ``concurrency(name, occupy=1, strict=True)`` on a
short, renewed lease."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

from prefect import get_client
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound


def ensure_limit(client: SyncPrefectClient, name: str, cap: int = 1) -> str:
    """A Prefect global concurrency limit ``name`` with ``cap`` slots, created when missing, re-activated
    when someone deactivated it in the UI (an inactive limit admits everyone, and releasegate's rules must
    not depend on a UI toggle) and without slot decay. Returns created | updated | unchanged.

    Used for the one-at-a-time locks below (cap 1, taken with ``concurrency(name, strict=True)``) and for
    the admission slots mirroring the capacity policy (``prefect_slots``)."""
    action = "unchanged"
    try:
        limit = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        action = "created"
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=cap))
        except ObjectAlreadyExists:  # created concurrently
            pass
        limit = client.read_global_concurrency_limit_by_name(name)
    if not limit.active or limit.limit != cap or (limit.slot_decay_per_second or 0) != 0:
        action = "updated" if action == "unchanged" else action
        client.update_global_concurrency_limit(
            name, GlobalConcurrencyLimitUpdate(active=True, limit=cap, slot_decay_per_second=0)
        )
    return action


def _ensure_limit(name: str) -> str:
    with get_client(sync_client=True) as c:
        ensure_limit(c, name)
    return name


def ensure_model_lock(model: str) -> str:
    """One promotion per model at a time (held for the whole promotion, approvals included)."""
    return _ensure_limit(f"promotion-{model}")


def ensure_alias_lock(model: str) -> str:
    """One alias change per model at a time: the binary step of a promotion and every rollback take it.

    Separate from the promotion lock, which is held while a promotion waits (up to a day) for approvals:
    an emergency rollback must not wait behind that, but it must never interleave with alias moves."""
    return _ensure_limit(f"aliases-{model}")


def ensure_reminder_lock() -> str:
    """One sender of joint-ack reminders at a time (``services.ack_reminders``): two deferral sweepers
    at once check, send and record each reminder one after the other, so it goes out once."""
    return _ensure_limit("notices-ack-reminders")


# A held lock's lease, renewed by Prefect every 3/4 of it while its holder lives. Prefect's default is
# 300 s: a promotion killed while holding ``promotion-<model>`` kept its rerun waiting about five
# minutes. A killed holder's slot is now free within this lease plus the server's lease sweep (15 s);
# 90 s (the server's minimum is 60) leaves each renewal 22 s of retries on a busy machine.
LOCK_LEASE_SECONDS = 90


def hold(name: str) -> AbstractContextManager[Any]:
    """Hold the one-at-a-time lock ``name`` (an ``ensure_*_lock`` name): wait for it, strict, on a
    short lease that is renewed while the holder runs."""
    from prefect.concurrency.sync import concurrency

    return concurrency(name, occupy=1, strict=True, lease_duration=LOCK_LEASE_SECONDS)


def deployment_limit_name(deployment: str) -> str:
    return f"deployment-{deployment}"


@contextmanager
def work_slot(deployment: str, policy: Any, enqueue: bool = False) -> Iterator[bool]:
    """A slot of the deployment's own concurrency limit (``runtime_policy.concurrency_limit``, held by
    releasegate as the global concurrency limit ``deployment-<name>``). Yields False when the collision
    strategy is CANCEL_NEW and every slot is taken (the caller ends the run Cancelled), True once held.
    A flow that waits for people holds it around its work only: a paused run keeps no slot, as Prefect's
    deployment limits intend, and no lease of Prefect's is revoked under it (``policy.runtime_policy``)."""
    from prefect.concurrency.asyncio import AcquireConcurrencySlotTimeoutError
    from prefect.concurrency.sync import concurrency

    name = deployment_limit_name(deployment)
    with get_client(sync_client=True) as c:
        ensure_limit(c, name, policy.concurrency_limit)
    # ENQUEUE (or ``enqueue``: a run past its first step must not be cancelled): wait for a slot
    wait = 5 if policy.collision_strategy.value == "CANCEL_NEW" and not enqueue else None
    with ExitStack() as held:
        try:
            held.enter_context(concurrency(name, occupy=1, timeout_seconds=wait, strict=True))
        except AcquireConcurrencySlotTimeoutError:
            yield False
            return
        yield True


@contextmanager
def model_slot(deployment: str, model: str, policy: Any) -> Iterator[None]:
    """The deployment's concurrency limit held per model (``deployment-<deployment>-<model key>``): runs of
    one model wait for each other (whatever the collision strategy: a run past its first step is never
    cancelled), runs of two models never do."""
    from releasegate.slugs import slug

    with work_slot(f"{deployment}-{slug(model)}", policy, enqueue=True):
        yield

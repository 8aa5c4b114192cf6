"""Atomic admission: an admitted run takes leased slots on Prefect global concurrency limits.

The gateway decides from a snapshot of the pool (``prefect_gate.build_snapshot``). Two runs starting on
two workers at the same moment each read the pool before the other is admitted; the snapshot alone cannot
promise that only one of them takes the last free slot. Prefect's global concurrency limits can: the
server grants slots in one conditional update, so the slots granted never exceed the limit whatever the
number of workers. releasegate mirrors the capacity policy onto two of them:

* ``rg-pool-<pool>`` with the pool cap, and
* ``rg-queue-<pool>-<queue>`` with each queue's cap,

and a run the policy admits takes one slot of each, in one request, before its body starts. The slots
are *leased* (``lease_duration``): Prefect renews the lease while the run holds it and frees the slots when
the run ends; a run whose process dies stops renewing, so its slots come back after the lease expires
instead of leaking (Prefect's own task-run and deployment limits had that failure: #9270, #17415).
A run that finds no slot (another worker won the race) is deferred with ``CAPACITY_LIMIT`` or
``QUEUE_LIMIT`` like any other deferral (``policy.capacity.slots_taken``).

The slots are held by the scope ``governed_flow`` opens around the run's body (``admission_scope``);
``gate_current_run`` called from a plain ``@flow`` (no scope) decides from the snapshot only.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from uuid import UUID

import httpx
from prefect import get_client
from prefect.client.schemas.objects import ConcurrencyLeaseHolder, FlowRun
from prefect.exceptions import ObjectNotFound

from releasegate.adapters.prefect_locks import ensure_limit
from releasegate.policy.capacity import GatewayConfig

LEASE_SECONDS = 60.0  # how long slots of a dead run stay taken; Prefect renews the lease of a live one

_logger = logging.getLogger(__name__)
_scope: contextvars.ContextVar[ExitStack | None] = contextvars.ContextVar("releasegate_admission", default=None)


def pool_limit(config: GatewayConfig) -> str:
    return f"rg-pool-{config.pool_name}"


def queue_limit(config: GatewayConfig, queue: str) -> str:
    return f"rg-queue-{config.pool_name}-{queue}"


def limits_of(config: GatewayConfig, queue: str) -> dict[str, int]:
    """The Prefect limits (name -> cap) a run of ``queue`` takes one slot of."""
    return {
        pool_limit(config): config.pool_concurrency_limit,
        queue_limit(config, queue): config.queue(queue).concurrency_limit,
    }


def ensure_limits(config: GatewayConfig, names: dict[str, int] | None = None) -> dict[str, str]:
    """Create or correct the policy's limits (all, or ``names``): active, no slot decay, the policy's cap.
    Returns name -> created | updated | unchanged.

    Called by ``releasegate infra up`` for all, and by ``take_slots`` for a run's two before it takes
    their slots (a policy edited in its block takes effect at the next admission; a limit deactivated in
    the UI would admit everyone, so it is re-activated)."""
    wanted = names or {pool_limit(config): config.pool_concurrency_limit} | {
        queue_limit(config, q.name): q.concurrency_limit for q in config.queues
    }
    with get_client(sync_client=True) as c:
        return {name: ensure_limit(c, name, cap) for name, cap in wanted.items()}


@contextmanager
def admission_scope() -> Iterator[None]:
    """Where an admitted run's slots live: opened around a governed run's body, released at its end."""
    with ExitStack() as stack:
        token = _scope.set(stack)
        try:
            yield
        finally:
            _scope.reset(token)


def in_scope() -> bool:
    return _scope.get() is not None


def take_slots(config: GatewayConfig, queue: str, run_id: str) -> str | None:
    """Take one leased slot of the pool's and the queue's limit for this run, or name the full limit.

    Returns None when the slots are held (until the admission scope closes), else the name of a limit
    that had no free slot. Never waits: a run that lost the race is deferred, not blocked on a worker."""
    stack = _scope.get()
    assert stack is not None, "take_slots needs the admission scope governed_flow opens"
    names = limits_of(config, queue)
    # Ensured before every lease: Prefect's answer lists a limit someone deactivated in the UI (or gave a
    # slot decay) with its cap, as if it held, so only reading the limits catches that (two small reads).
    ensure_limits(config, names)
    lease_id = _try_lease(names, run_id)
    if lease_id is _MISMATCH:  # the policy's caps changed between the two calls (a block edited): once more
        ensure_limits(config, names)
        lease_id = _try_lease(names, run_id)
    if not isinstance(lease_id, UUID):
        return full_limit(names)
    stack.callback(_quietly, mark, run_id, RELEASED)  # runs after the lease is given back (last in, first out)
    stack.enter_context(_leased(lease_id))
    mark(run_id, HELD)
    # Runs first when the scope closes (last in, first out), so the line is logged while the slots are
    # still held: between "capacity gateway: admitted" and this line the run's body held its slots.
    stack.callback(_log_release, list(names))
    return None


_MISMATCH = object()


def _try_lease(names: dict[str, int], run_id: str) -> UUID | object | None:
    """One slot of each limit under one lease: its id, None when a limit has no free slot, or _MISMATCH
    when a limit is missing or its cap is not the policy's (the lease, if any, is given back).

    The answer lists the limits Prefect found with their caps; it is checked against the policy so that
    a slot is never held under a cap the policy does not have."""
    holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(run_id))
    with get_client(sync_client=True) as c:
        try:
            granted = c.increment_concurrency_slots_with_lease(list(names), 1, "concurrency", LEASE_SECONDS, holder)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 423:  # 423 Locked: no free slot; anything else is an error
                raise
            return None
        body = granted.json()
        lease_id = UUID(body["lease_id"])
        if {lim["name"]: lim["limit"] for lim in body.get("limits", [])} != names:
            c.release_concurrency_slots_with_lease(lease_id)
            return _MISMATCH
    return lease_id


@contextmanager
def _leased(lease_id: UUID) -> Iterator[None]:
    """Renew the lease while the run holds it; release it at the end.

    Prefect's ``concurrency()`` context manager does the same but only waits or raises (and logs an
    ERROR for every refused try); the gateway needs a non-blocking try that defers the run instead."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LEASE_SECONDS / 3):
            try:
                with get_client(sync_client=True) as c:
                    c.renew_concurrency_lease(lease_id, LEASE_SECONDS)
            except Exception as exc:  # a blip of the API must not kill an EOD run: try again next round
                _logger.warning("could not renew admission lease %s: %s", lease_id, exc)

    thread = threading.Thread(target=renew, name=f"releasegate-lease-{lease_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        _quietly(_release, lease_id)


def _release(lease_id: UUID) -> None:
    with get_client(sync_client=True) as c:
        c.release_concurrency_slots_with_lease(lease_id)


def _quietly(fn: Callable[..., None], *args: Any) -> None:
    """At the end of a run whose body is done: an API error must not fail the run. An unreleased lease
    expires after LEASE_SECONDS; a label left at ``held`` on a finished run is never read (only Pending
    and Running runs are)."""
    try:
        fn(*args)
    except Exception as exc:
        _logger.warning("admission clean-up %s%s failed: %s", fn.__name__, args, exc)


def _log_release(names: list[str]) -> None:
    from prefect import get_run_logger

    get_run_logger().info("%s %s", RELEASING, ", ".join(names))


RELEASING = "capacity gateway: releasing admission slots of"


# The run's admission, as a Prefect flow-run label (visible in the UI): the snapshot counts a gated run
# as holding capacity only once admitted. Prefect cannot say which run holds a limit's slots.
LABEL = "releasegate.admission"
HELD, RELEASED, OVERRIDE, UNLEASED = "held", "released", "override", "admitted-unleased"


def mark(run_id: str, value: str) -> None:
    with get_client(sync_client=True) as c:
        c.update_flow_run_labels(UUID(run_id), {LABEL: value})


def admitted(run: FlowRun) -> bool:
    """Whether a Pending/Running gated run holds capacity: admitted and not yet released."""
    return (run.labels or {}).get(LABEL) in (HELD, OVERRIDE, UNLEASED)


def full_limit(names: dict[str, int]) -> str:
    """Which of the limits has no free slot now (the pool's first: it is the wider promise)."""
    with get_client(sync_client=True) as c:
        for name in names:
            limit = c.read_global_concurrency_limit_by_name(name)
            if limit.active_slots >= limit.limit:
                return name
    return next(iter(names))  # freed meanwhile: name the pool; the run asks again after the backoff


def held_slots(config: GatewayConfig) -> dict[str, int]:
    """Active slots per limit of the policy (for tests, the CLI and the sweeper)."""
    with get_client(sync_client=True) as c:
        out = {}
        for name in [pool_limit(config)] + [queue_limit(config, q.name) for q in config.queues]:
            try:
                out[name] = c.read_global_concurrency_limit_by_name(name).active_slots
            except ObjectNotFound:
                out[name] = 0
        return out

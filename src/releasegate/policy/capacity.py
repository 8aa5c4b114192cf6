"""The capacity gateway: may this run start now, and if not, why and when to ask again.

This is the one file that answers "why was this run deferred". ``evaluate`` takes the run's request, a
snapshot of the pool (what runs, what is due), the gateway configuration and ``now``, and returns a
``GateDecision`` = ``Admitted | Deferred``: a deferral carries its ``deferral_reason_code`` and
``next_evaluation_at``; an admission carries neither.

Checks, in this order (the first that holds decides):

1. ``CHANGE_FREEZE`` — a change-freeze window covering the deployment is active; ask again at its end.
2. ``MAINTENANCE_WINDOW`` — a maintenance window is active; ask again at its end.
3. ``UPSTREAM_NOT_READY`` — an upstream deployment's run for the same business date(s) has not
   completed; ask again after the backoff.
4. ``PRIORITY_CONFLICT`` — by the configured ``admission`` rule:

   * ``priority_window`` (the first rule): a run in a higher-priority queue (lower number) is running,
     or due within ``priority_window_minutes``; ask again after the backoff.
   * ``reservation`` (EASY backfilling, as Slurm's backfill scheduler does it): every higher-priority
     run due within ``reservation_horizon_minutes`` holds a reservation (its start, one slot, its
     expected duration). A lower-priority run is admitted when it fits in the free slots *and* does not
     take a slot some reservation needs at its start: either it is expected to end before that start,
     or the pool still has a slot for the reservation then (runs expected to have ended by then do not
     count). Otherwise it is deferred to the end of the reservation that blocked it, which the
     explanation names. A run of unknown duration is assumed to run past every reservation.

   This is how EOD scoring goes before backfills: Prefect itself orders only due runs by queue priority
   and never holds a lower one back.
5. ``CAPACITY_LIMIT`` — the pool-wide cap is reached; ask again after the backoff.
6. ``QUEUE_LIMIT`` — the run's queue cap is reached; ask again after the backoff.
7. After an admission, the run takes one leased slot of the pool's and its queue's Prefect global
   concurrency limit (``adapters.prefect_slots``): the snapshot may be stale by the time two workers
   act on it, the slots are granted atomically. A run that finds them taken (``slots_taken``) is
   deferred with ``CAPACITY_LIMIT`` or ``QUEUE_LIMIT`` naming the limit, after the backoff.

The backoff grows with the run's previous deferrals (``backoff_seconds``, last value repeated). Under
the ``reservation`` rule a capacity or queue deferral asks again when the first run holding a slot is
expected to end (when the snapshot knows it), not after a fixed backoff.
Windows carry their own IANA timezone and recur once, daily or weekly. Pure module: ``now`` is passed in.

How the flows use it (``releasegate.adapters.prefect_gate``): every gated flow calls the gateway
first; a deferred run puts itself back into a Prefect ``Scheduled`` state named ``Deferred`` at
``next_evaluation_at`` with the reason code as message, writes a deferral record, and signals Prefect's
engine to exit cleanly so the worker picks it up again at that time. Admission control from outside
(holding runs in an unpolled queue and moving them) is not possible: Prefect cannot move a flow run to
another work queue after creation, and cron runs are created ``Scheduled`` by Prefect's scheduler
where any worker may take them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from releasegate.policy.active_runs import ActiveRun
from releasegate.policy.gateway_config import DeploymentGate, GatewayConfig, QueueConfig
from releasegate.policy.reservations import ReservationPlan
from releasegate.policy.windows import Window

# re-exported: configurations and tools import them from here
__all__ = ["ActiveRun", "DeploymentGate", "GatewayConfig", "QueueConfig", "Window"]


class DeferralReason(StrEnum):
    CAPACITY_LIMIT = "CAPACITY_LIMIT"
    QUEUE_LIMIT = "QUEUE_LIMIT"
    PRIORITY_CONFLICT = "PRIORITY_CONFLICT"
    CHANGE_FREEZE = "CHANGE_FREEZE"
    MAINTENANCE_WINDOW = "MAINTENANCE_WINDOW"
    UPSTREAM_NOT_READY = "UPSTREAM_NOT_READY"


REASON_DESCRIPTIONS: dict[DeferralReason, str] = {
    DeferralReason.CAPACITY_LIMIT: "the work pool's concurrency cap is reached",
    DeferralReason.QUEUE_LIMIT: "the run's work queue cap is reached",
    DeferralReason.PRIORITY_CONFLICT: "a higher-priority run is running or due within the priority window",
    DeferralReason.CHANGE_FREEZE: "a change freeze is in force",
    DeferralReason.MAINTENANCE_WINDOW: "a maintenance window is in force",
    DeferralReason.UPSTREAM_NOT_READY: "an upstream run for the same business date has not completed",
}


# ------------------------------------------------------------------------------------ inputs
class RunRequest(BaseModel):
    """The run asking to start."""

    model_config = ConfigDict(frozen=True)
    flow_run_id: str
    deployment: str
    queue: str
    business_dates: list[date] = Field(default_factory=list)
    attempts: int = 0  # deferrals so far
    # how long the run is expected to take (a conservative percentile of its deployment's completed
    # runs, else its runtime policy's timeout); None: unknown, assumed to run past every reservation
    expected_seconds: float | None = None


class CapacitySnapshot(BaseModel):
    """What the pool looks like now, the requesting run excluded."""

    model_config = ConfigDict(frozen=True)
    active: list[ActiveRun] = Field(default_factory=list)  # running or pending: they hold a slot
    # scheduled (deferred ones too, under the reservation rule, at their next evaluation), or starting
    upcoming: list[ActiveRun] = Field(default_factory=list)
    completed: set[tuple[str, date]] = Field(default_factory=set)  # (deployment, business_date) done


class Admitted(BaseModel):
    """The run may start now."""

    model_config = ConfigDict(frozen=True)
    admitted: Literal[True] = True
    deferral_reason_code: None = None
    next_evaluation_at: None = None
    explanation: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class Deferred(BaseModel):
    """The run may not start now: why (a reason code) and when to ask again."""

    model_config = ConfigDict(frozen=True)
    admitted: Literal[False] = False
    deferral_reason_code: DeferralReason
    next_evaluation_at: datetime
    explanation: str
    evidence: dict[str, Any] = Field(default_factory=dict)


GateDecision = Admitted | Deferred


def expected_duration(
    samples: list[float], fallback: float | None, percentile: float = 90.0, min_samples: int = 3
) -> float | None:
    """How long a deployment's run is planned to take: a conservative percentile (nearest rank, rounded
    up) of its own completed runs' durations (seconds) when there are ``min_samples``, else ``fallback``
    (its runtime policy's timeout), else None (unknown: the run is assumed to outlast every reservation)."""
    if len(samples) < min_samples:
        return fallback
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * percentile // 100))  # ceil without floats drifting
    return float(ordered[int(rank) - 1])


# ---------------------------------------------------------------------------------- the rule
def _defer(reason: DeferralReason, at: datetime, explanation: str, **evidence: Any) -> Deferred:
    return Deferred(
        deferral_reason_code=reason,
        next_evaluation_at=at,
        explanation=f"{reason.value}: {explanation}",
        evidence=evidence,
    )


def slots_taken(request: RunRequest, config: GatewayConfig, now: datetime, limit: str, pool_wide: bool) -> Deferred:
    """Check 7: the policy admitted the run from its snapshot, but a run admitted meanwhile (on another
    worker) took the last slot of ``limit``; ask again after the backoff."""
    reason = DeferralReason.CAPACITY_LIMIT if pool_wide else DeferralReason.QUEUE_LIMIT
    return _defer(
        reason,
        now + config.backoff(request.attempts),
        f"admitted from the snapshot, but another run took the last slot of the Prefect limit {limit!r} first",
        limit=limit,
    )


def evaluate(request: RunRequest, snapshot: CapacitySnapshot, config: GatewayConfig, now: datetime) -> GateDecision:
    """Admit the run, or defer it with a reason code and the time to ask again."""
    return _Evaluator(snapshot, config, now).decide(request)


def decider(snapshot: CapacitySnapshot, config: GatewayConfig, now: datetime) -> Callable[[RunRequest], GateDecision]:
    """``evaluate`` bound to one snapshot: the snapshot's per-priority blockers, reservations and queue
    counts are computed once, and answers for equal expected durations reused, whoever asks next
    (what the sweeper or a simulation needs while the pool does not change)."""
    return _Evaluator(snapshot, config, now).decide


def evaluate_many(
    requests: list[RunRequest], snapshot: CapacitySnapshot, config: GatewayConfig, now: datetime
) -> list[GateDecision]:
    """The same rule for a whole backlog against one snapshot (``decider`` applied to each)."""
    decide = decider(snapshot, config, now)
    return [decide(r) for r in requests]


class _Evaluator:
    """``evaluate`` over one snapshot; caches what does not depend on the request."""

    def __init__(self, snapshot: CapacitySnapshot, config: GatewayConfig, now: datetime):
        self.snapshot, self.config, self.now = snapshot, config, now.astimezone(UTC)
        self.priority_of = {q.name: q.priority for q in config.queues}
        self._blockers: dict[int, list[ActiveRun]] = {}
        self._reservations: dict[int, list[ActiveRun]] = {}
        self._plans: dict[int, ReservationPlan] = {}
        self._blocker_ids: dict[int, list[str]] = {}
        self._windows: dict[tuple[str, str], tuple[datetime, str] | None] = {}
        self._active_windows: list[tuple[Window, datetime]] | None = None
        self._in_queue: dict[str | None, int] | None = None
        # a reservation conflict's deferral per (expected duration, next evaluation): the same for every
        # run alike against this snapshot (a frozen answer, shared)
        self._conflicts: dict[tuple[float | None, datetime], Deferred] = {}

    def blockers(self, my_priority: int) -> list[ActiveRun]:
        if my_priority not in self._blockers:
            horizon = self.now + timedelta(minutes=self.config.priority_window_minutes)
            prio = self.priority_of

            def higher(run: ActiveRun) -> bool:
                return run.queue in prio and prio[run.queue] < my_priority

            found = [r for r in self.snapshot.active if higher(r)]
            found += [
                r
                for r in self.snapshot.upcoming
                if higher(r) and r.expected_start is not None and r.expected_start <= horizon
            ]
            self._blockers[my_priority] = found
        return self._blockers[my_priority]

    def reservations(self, my_priority: int) -> list[ActiveRun]:
        """Higher-priority scheduled runs due within the reservation horizon, earliest first."""
        if my_priority not in self._reservations:
            horizon = self.now + timedelta(minutes=self.config.reservation_horizon_minutes)
            prio = self.priority_of
            due = [
                r
                for r in self.snapshot.upcoming
                if r.queue in prio
                and prio[r.queue] < my_priority
                and r.expected_start is not None
                and r.expected_start <= horizon
            ]
            self._reservations[my_priority] = sorted(due, key=lambda r: r.expected_start or self.now)
        return self._reservations[my_priority]

    def plan(self, my_priority: int) -> ReservationPlan:
        if my_priority not in self._plans:
            self._plans[my_priority] = ReservationPlan(
                self.reservations(my_priority),
                self.snapshot.active,
                self.now,
                self.config.pool_concurrency_limit,
                {q.name: q.concurrency_limit for q in self.config.queues},
            )
        return self._plans[my_priority]

    def reservation_conflict(self, request: RunRequest, my_priority: int, backoff_at: datetime) -> Deferred | None:
        """The reservation this run would take a slot from (EASY backfilling), as a deferral to the earliest
        time it fits; else None."""
        reserved = self.reservations(my_priority)
        if len(self.snapshot.active) + len(reserved) < self.config.pool_concurrency_limit:
            return None  # room for every running run, every reservation and this run at once: none blocked
        plan = self.plan(my_priority)
        hit = plan.blocking(self.now, request.expected_seconds)
        if hit is None:
            return None
        r, running_then, reserved_then = hit
        mine = request.expected_seconds
        fits = plan.earliest_fit(mine)
        key = (mine, fits or backoff_at)
        if key in self._conflicts:
            return self._conflicts[key]
        start, end = plan.span_of(r)
        until = (
            f"until {(self.now + timedelta(seconds=mine)).isoformat()}" if mine is not None else "for an unknown time"
        )
        self._conflicts[key] = deferral = _defer(
            DeferralReason.PRIORITY_CONFLICT,
            fits or backoff_at,
            f"{r.deployment or 'a run'} ({r.flow_run_id}) in queue {r.queue!r} holds a reservation at "
            f"{start.isoformat()}{f' until {end.isoformat()}' if end else ''}; this run, expected to run "
            f"{until}, would take the slot it needs ({running_then} running then, {reserved_then} reserved, "
            f"cap {self.config.pool_concurrency_limit}); it fits "
            + (f"from {fits.isoformat()}" if fits else "at no known time: asking again after the backoff"),
            blocking_runs=[r.flow_run_id],
            reservation_start=start.isoformat(),
            reservation_end=end.isoformat() if end else None,
        )
        return deferral

    def next_free(self, queue: str | None = None) -> datetime | None:
        """When the first slot (of ``queue``, or of the pool) is expected to free, if the snapshot knows."""
        ends = [
            r.expected_end
            for r in self.snapshot.active
            if r.expected_end is not None and r.expected_end > self.now and (queue is None or r.queue == queue)
        ]
        return min(ends) if ends else None

    def blocker_ids(self, my_priority: int) -> list[str]:
        if my_priority not in self._blocker_ids:
            self._blocker_ids[my_priority] = [r.flow_run_id for r in self.blockers(my_priority)]
        return self._blocker_ids[my_priority]

    def window(self, kind: str, deployment: str) -> tuple[datetime, str] | None:
        key = (kind, deployment)
        if key not in self._windows:
            if self._active_windows is None:  # the windows in force now, whoever asks
                self._active_windows = [
                    (w, span[1]) for w in self.config.windows if (span := w.active_at(self.now)) is not None
                ]
            ends = [(end, w.name) for w, end in self._active_windows if w.kind == kind and w.applies_to(deployment)]
            self._windows[key] = max(ends) if ends else None
        return self._windows[key]

    def in_queue(self, queue: str) -> int:
        if self._in_queue is None:
            counts: dict[str | None, int] = {}
            for r in self.snapshot.active:
                counts[r.queue] = counts.get(r.queue, 0) + 1
            self._in_queue = counts
        return self._in_queue.get(queue, 0)

    def decide(self, request: RunRequest) -> GateDecision:
        config, snapshot, now = self.config, self.snapshot, self.now
        backoff_at = now + config.backoff(request.attempts)

        for kind, reason in (
            ("change_freeze", DeferralReason.CHANGE_FREEZE),
            ("maintenance", DeferralReason.MAINTENANCE_WINDOW),
        ):
            hit = self.window(kind, request.deployment)
            if hit:
                end, name = hit
                return _defer(
                    reason, end, f"window {name!r} until {end.isoformat()}", window=name, window_end=end.isoformat()
                )

        gate = config.deployments.get(request.deployment)
        if gate and gate.upstreams and request.business_dates:
            missing = [
                f"{up}@{d.isoformat()}"
                for up in gate.upstreams
                for d in request.business_dates
                if (up, d) not in snapshot.completed
            ]
            if missing:
                return _defer(
                    DeferralReason.UPSTREAM_NOT_READY,
                    backoff_at,
                    f"waiting for {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}",
                    missing=missing,
                )

        my_priority = config.queue(request.queue).priority
        reservation = config.admission == "reservation"
        if reservation:
            conflict = self.reservation_conflict(request, my_priority, backoff_at)
            if conflict is not None:
                return conflict
        blockers = [] if reservation else self.blockers(my_priority)  # never the requester: it ranks equal
        if blockers:
            b = blockers[0]
            if b.state in ("running", "pending"):
                what = "running"
            elif b.state == "starting":
                what = "starting (at the gateway)"
            else:  # an upcoming run: blockers() keeps only those with an expected start inside the window
                assert b.expected_start is not None
                what = f"due at {b.expected_start.isoformat()}"
            return _defer(
                DeferralReason.PRIORITY_CONFLICT,
                backoff_at,
                f"{b.deployment or 'a run'} ({b.flow_run_id}) in queue {b.queue!r} is {what}",
                blocking_runs=self.blocker_ids(my_priority),
            )

        in_pool = len(snapshot.active)
        if in_pool >= config.pool_concurrency_limit:
            return _defer(
                DeferralReason.CAPACITY_LIMIT,
                (self.next_free() if reservation else None) or backoff_at,
                f"{in_pool} runs hold the pool's {config.pool_concurrency_limit} slots",
                active=in_pool,
            )
        in_queue = self.in_queue(request.queue)
        queue_cap = config.queue(request.queue).concurrency_limit
        if in_queue >= queue_cap:
            return _defer(
                DeferralReason.QUEUE_LIMIT,
                (self.next_free(request.queue) if reservation else None) or backoff_at,
                f"{in_queue} runs hold queue {request.queue!r}'s {queue_cap} slots",
                active_in_queue=in_queue,
            )
        return Admitted(
            explanation=f"admitted: {in_pool}/{config.pool_concurrency_limit} pool slots, "
            f"{in_queue}/{queue_cap} in {request.queue!r}, no freeze, upstreams ready, no higher-priority run",
        )

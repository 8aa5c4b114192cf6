"""The capacity gateway's rule, case by case (pure: snapshot in, decision out, clock passed in)."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
import yaml
from pydantic import ValidationError

from releasegate.policy.capacity import (
    ActiveRun,
    Admitted,
    CapacitySnapshot,
    DeferralReason,
    GatewayConfig,
    RunRequest,
    Window,
    evaluate,
)
from releasegate.policy.deferrals import SlaState, escalations_due, runs_to_wake, sla_state
from tests.conftest import ROOT

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # Monday 18:00 in Zurich
DAY = date(2026, 11, 20)


def config(**overrides) -> GatewayConfig:
    base = dict(
        pool_concurrency_limit=3,
        queues=[
            {"name": "critical", "priority": 1, "concurrency_limit": 2},
            {"name": "bulk", "priority": 10, "concurrency_limit": 2},
        ],
        deployments={"eod-scoring": {"queue": "critical"}, "backfill": {"queue": "bulk", "upstreams": ["eod-scoring"]}},
        admission="priority_window",  # the first rule's cases; the reservation rule's set it themselves
    )
    base.update(overrides)
    return GatewayConfig.model_validate(base)


def backfill(attempts=0, dates=(DAY,)) -> RunRequest:
    return RunRequest(
        flow_run_id="bf", deployment="backfill", queue="bulk", business_dates=list(dates), attempts=attempts
    )


def run(i, queue="bulk", state="running", deployment="backfill", start=None) -> ActiveRun:
    return ActiveRun(flow_run_id=f"r{i}", deployment=deployment, queue=queue, state=state, expected_start=start)


READY = {("eod-scoring", DAY)}


def test_admitted_when_nothing_stands_in_the_way():
    d = evaluate(backfill(), CapacitySnapshot(completed=READY), config(), NOW)
    assert d.admitted and d.deferral_reason_code is None and d.next_evaluation_at is None


def test_priority_conflict_while_eod_runs():
    snap = CapacitySnapshot(active=[run(1, "critical", deployment="eod-scoring")], completed=READY)
    d = evaluate(backfill(), snap, config(), NOW)
    assert d.deferral_reason_code is DeferralReason.PRIORITY_CONFLICT
    assert d.next_evaluation_at == NOW + timedelta(seconds=60)
    assert d.evidence["blocking_runs"] == ["r1"] and "eod-scoring" in d.explanation


def test_priority_conflict_when_eod_is_due_within_the_window_only():
    due_soon = CapacitySnapshot(
        upcoming=[run(1, "critical", "scheduled", "eod-scoring", NOW + timedelta(minutes=10))], completed=READY
    )
    assert evaluate(backfill(), due_soon, config(), NOW).deferral_reason_code is DeferralReason.PRIORITY_CONFLICT
    due_later = CapacitySnapshot(
        upcoming=[run(1, "critical", "scheduled", "eod-scoring", NOW + timedelta(minutes=20))], completed=READY
    )
    assert evaluate(backfill(), due_later, config(), NOW).admitted


def test_eod_is_never_held_back_by_backfills():
    eod = RunRequest(flow_run_id="e", deployment="eod-scoring", queue="critical")
    snap = CapacitySnapshot(active=[run(1), run(2)])
    assert evaluate(eod, snap, config(), NOW).admitted


def test_capacity_limit_when_the_pool_is_full():
    snap = CapacitySnapshot(active=[run(1, "critical", deployment="x"), run(2), run(3)], completed=READY)
    eod = RunRequest(flow_run_id="e", deployment="eod-scoring", queue="critical")
    d = evaluate(eod, snap, config(), NOW)
    assert d.deferral_reason_code is DeferralReason.CAPACITY_LIMIT and "3 runs hold the pool's 3 slots" in d.explanation


def test_queue_limit_when_the_queue_is_full():
    d = evaluate(backfill(), CapacitySnapshot(active=[run(1), run(2)], completed=READY), config(), NOW)
    assert d.deferral_reason_code is DeferralReason.QUEUE_LIMIT


def test_upstream_not_ready():
    d = evaluate(backfill(dates=(DAY, DAY + timedelta(days=1))), CapacitySnapshot(completed=READY), config(), NOW)
    assert d.deferral_reason_code is DeferralReason.UPSTREAM_NOT_READY
    assert d.evidence["missing"] == ["eod-scoring@2026-11-21"]


def test_change_freeze_defers_until_its_end():
    freeze = Window(
        name="year-end",
        kind="change_freeze",
        timezone="Europe/Zurich",
        start=NOW - timedelta(hours=1),
        end=NOW + timedelta(days=2),
        deployments=["backfill"],
    )
    d = evaluate(backfill(), CapacitySnapshot(completed=READY), config(windows=[freeze]), NOW)
    assert d.deferral_reason_code is DeferralReason.CHANGE_FREEZE and d.next_evaluation_at == NOW + timedelta(days=2)
    # A freeze scoped to backfills leaves EOD alone.
    eod = RunRequest(flow_run_id="e", deployment="eod-scoring", queue="critical")
    assert evaluate(eod, CapacitySnapshot(), config(windows=[freeze]), NOW).admitted


def test_weekly_maintenance_window_in_its_timezone():
    # Sundays 02:00-04:00 Zurich. 2026-11-22 02:30 Zurich = 01:30 UTC.
    mw = Window(
        name="sun",
        kind="maintenance",
        timezone="Europe/Zurich",
        recurrence="weekly",
        weekdays=[6],
        start_time=time(2, 0),
        duration_minutes=120,
    )
    inside = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)
    d = evaluate(backfill(), CapacitySnapshot(completed=READY), config(windows=[mw]), inside)
    assert d.deferral_reason_code is DeferralReason.MAINTENANCE_WINDOW
    assert d.next_evaluation_at == datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    assert evaluate(
        backfill(), CapacitySnapshot(completed=READY), config(windows=[mw]), inside + timedelta(hours=2)
    ).admitted
    # Summer time: 02:30 Zurich = 00:30 UTC.
    summer = datetime(2027, 6, 6, 0, 30, tzinfo=UTC)
    assert mw.active_at(summer) == (datetime(2027, 6, 6, 0, 0, tzinfo=UTC), datetime(2027, 6, 6, 2, 0, tzinfo=UTC))


def test_daily_window_spanning_midnight():
    mw = Window(
        name="night",
        kind="maintenance",
        timezone="UTC",
        recurrence="daily",
        start_time=time(23, 0),
        duration_minutes=120,
    )
    assert mw.active_at(datetime(2026, 11, 24, 0, 30, tzinfo=UTC)) == (
        datetime(2026, 11, 23, 23, 0, tzinfo=UTC),
        datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
    )
    assert mw.active_at(datetime(2026, 11, 24, 1, 0, tzinfo=UTC)) is None


def test_freeze_outranks_everything_else():
    freeze = Window(name="f", kind="change_freeze", start=NOW - timedelta(minutes=1), end=NOW + timedelta(hours=1))
    snap = CapacitySnapshot(active=[run(1, "critical"), run(2), run(3)])
    assert (
        evaluate(backfill(), snap, config(windows=[freeze]), NOW).deferral_reason_code is DeferralReason.CHANGE_FREEZE
    )


@pytest.mark.parametrize(("attempts", "seconds"), [(0, 60), (1, 120), (2, 300), (3, 600), (9, 600)])
def test_backoff_grows_with_attempts(attempts, seconds):
    snap = CapacitySnapshot(active=[run(1, "critical")], completed=READY)
    assert evaluate(backfill(attempts), snap, config(), NOW).next_evaluation_at == NOW + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"deployments": {"x": {"queue": "nope"}}}, "deployments.x.queue"),
        ({"sla_alert_minutes": 60, "sla_incident_minutes": 30}, "sla_incident_minutes"),
        (
            {
                "windows": [
                    {
                        "name": "w",
                        "kind": "maintenance",
                        "recurrence": "weekly",
                        "start_time": "02:00:00",
                        "duration_minutes": 60,
                    }
                ]
            },
            "weekdays",
        ),
        (
            {
                "windows": [
                    {
                        "name": "w",
                        "kind": "change_freeze",
                        "start": "2026-12-01T00:00:00Z",
                        "end": "2026-11-01T00:00:00Z",
                    }
                ]
            },
            "end must be after start",
        ),
        (
            {
                "windows": [
                    {
                        "name": "w",
                        "kind": "change_freeze",
                        "start": "2026-12-01T00:00:00",
                        "end": "2026-12-02T00:00:00Z",
                    }
                ]
            },
            "timezone-aware",
        ),
    ],
)
def test_bad_configuration_is_refused_with_the_field(bad, words):
    with pytest.raises(ValidationError, match=words):
        config(**bad)


def test_shipped_capacity_policy_is_valid():
    cfg = GatewayConfig.model_validate(yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text()))
    assert cfg.queue("critical").priority < cfg.queue("bulk").priority


@pytest.mark.parametrize(("minutes", "state"), [(0, "ok"), (29, "ok"), (30, "alert"), (59, "alert"), (60, "incident")])
def test_sla_state(minutes, state):
    assert sla_state(NOW - timedelta(minutes=minutes), NOW) is SlaState(state)


def test_escalations_are_emitted_once_per_level():
    assert escalations_due(SlaState.alert, SlaState.ok) == [SlaState.alert]
    assert escalations_due(SlaState.incident, SlaState.ok) == [SlaState.alert, SlaState.incident]
    assert escalations_due(SlaState.incident, SlaState.alert) == [SlaState.incident]
    assert escalations_due(SlaState.incident, SlaState.incident) == []


def test_backlog_evaluation_gives_exactly_what_one_by_one_gives():
    from releasegate.policy.capacity import evaluate_many

    freeze = Window(
        name="f", kind="change_freeze", start=NOW - timedelta(hours=1), end=NOW + timedelta(hours=1), deployments=["x"]
    )
    cfg = config(
        windows=[freeze],
        deployments={"eod-scoring": {"queue": "critical"}, "backfill": {"queue": "bulk"}, "x": {"queue": "bulk"}},
    )
    snaps = [
        CapacitySnapshot(completed=READY),
        CapacitySnapshot(active=[run(1), run(2)], completed=READY),
        CapacitySnapshot(active=[run(1, "critical", deployment="eod-scoring")], completed=READY),
        CapacitySnapshot(upcoming=[run(9, "critical", "scheduled", "eod-scoring", NOW + timedelta(minutes=5))]),
        CapacitySnapshot(active=[run(1), run(2), run(3, "critical", deployment="eod-scoring")]),
    ]
    requests = [
        backfill(),
        backfill(attempts=3),
        RunRequest(flow_run_id="e", deployment="eod-scoring", queue="critical"),
        RunRequest(flow_run_id="x1", deployment="x", queue="bulk"),
    ]
    for snap in snaps:
        assert evaluate_many(requests, snap, cfg, NOW) == [evaluate(r, snap, cfg, NOW) for r in requests]


# ------------------------------------------------------------------ reservation-based admission
def _bf(minutes: float | None, i: int = 0) -> RunRequest:
    return RunRequest(
        flow_run_id=f"bf{i}",
        deployment="backfill",
        queue="bulk",
        business_dates=[DAY],
        expected_seconds=None if minutes is None else minutes * 60,
    )


def _eod_due(minutes_from_now: float, duration_minutes: float = 20, i: int = 9) -> ActiveRun:
    return ActiveRun(
        flow_run_id=f"eod{i}",
        deployment="eod-scoring",
        queue="critical",
        state="scheduled",
        expected_start=NOW + timedelta(minutes=minutes_from_now),
        expected_seconds=duration_minutes * 60,
    )


def _running(i: int, ends_in_minutes: float | None, queue="bulk") -> ActiveRun:
    end = None if ends_in_minutes is None else NOW + timedelta(minutes=ends_in_minutes)
    return ActiveRun(flow_run_id=f"r{i}", deployment="backfill", queue=queue, state="running", expected_end=end)


def _reserving(pool: int, critical: int, bulk: int) -> GatewayConfig:
    """The reservation rule on a pool of ``pool`` slots with these queue caps."""
    return config(
        admission="reservation",
        pool_concurrency_limit=pool,
        queues=[
            {"name": "critical", "priority": 1, "concurrency_limit": critical},
            {"name": "bulk", "priority": 10, "concurrency_limit": bulk},
        ],
    )


RESERVE = {  # the bulk queue may use the whole pool: only the reservation holds backfills back
    "admission": "reservation",
    "queues": [
        {"name": "critical", "priority": 1, "concurrency_limit": 2},
        {"name": "bulk", "priority": 10, "concurrency_limit": 3},
    ],
}


def test_reservation_a_running_eod_does_not_block_a_backfill_that_fits_in_a_free_slot():
    snap = CapacitySnapshot(active=[_running(1, 30, queue="critical")], completed=READY)
    assert evaluate(_bf(40), snap, config(**RESERVE), NOW).admitted
    # the first rule held it back for as long as EOD ran
    assert not evaluate(_bf(40), snap, config(), NOW).admitted


def test_reservation_backfills_that_end_before_eod_is_due_start_at_once_the_rest_wait_for_its_end():
    """Pool of 3, two backfills running past EOD's start in 10 min: a third that would also run past it
    would leave EOD no slot; one that ends within 10 min does not."""
    snap = CapacitySnapshot(active=[_running(1, 60), _running(2, 60)], upcoming=[_eod_due(10)], completed=READY)
    assert evaluate(_bf(8), snap, config(**RESERVE), NOW).admitted  # done before EOD starts
    d = evaluate(_bf(30), snap, config(**RESERVE), NOW)
    assert d.deferral_reason_code is DeferralReason.PRIORITY_CONFLICT
    assert d.next_evaluation_at == NOW + timedelta(minutes=30)  # the reservation's end: 10 + 20 min
    assert d.evidence["blocking_runs"] == ["eod9"] and "eod-scoring (eod9)" in d.explanation
    assert "reservation" in d.explanation
    unknown = evaluate(_bf(None), snap, config(**RESERVE), NOW)  # no estimate: assumed to run past EOD
    assert unknown.deferral_reason_code is DeferralReason.PRIORITY_CONFLICT


def test_reservation_slots_freed_before_the_reservation_count_for_it():
    # two running backfills end in 5 min: at EOD's start (10 min) the pool has room for EOD and this run
    snap = CapacitySnapshot(active=[_running(1, 5), _running(2, 5)], upcoming=[_eod_due(10)], completed=READY)
    assert evaluate(_bf(60), snap, config(**RESERVE), NOW).admitted
    # two EOD runs due (10 and 12 min) and one slot running past them: no room for a long backfill
    busy = CapacitySnapshot(active=[_running(1, 60)], upcoming=[_eod_due(10), _eod_due(12, i=8)], completed=READY)
    d = evaluate(_bf(60), busy, config(**RESERVE), NOW)
    assert d.deferral_reason_code is DeferralReason.PRIORITY_CONFLICT and d.evidence["blocking_runs"] == ["eod8"]
    assert evaluate(_bf(60), busy, config(**RESERVE, reservation_horizon_minutes=5), NOW).admitted  # beyond


def test_reservation_capacity_and_queue_deferrals_ask_again_when_the_first_slot_frees():
    full = CapacitySnapshot(active=[_running(1, 7), _running(2, 50), _running(3, 12)], completed=READY)
    d = evaluate(_bf(10), full, config(**RESERVE), NOW)
    assert d.deferral_reason_code is DeferralReason.CAPACITY_LIMIT and d.next_evaluation_at == NOW + timedelta(
        minutes=7
    )
    queue_full = CapacitySnapshot(active=[_running(1, 25), _running(2, 40), _running(3, 30)], completed=READY)
    q = evaluate(_bf(10), queue_full, config(**RESERVE, pool_concurrency_limit=5), NOW)
    assert q.deferral_reason_code is DeferralReason.QUEUE_LIMIT and q.next_evaluation_at == NOW + timedelta(minutes=25)
    unknown = CapacitySnapshot(active=[_running(1, None), _running(2, None), _running(3, None)], completed=READY)
    assert evaluate(_bf(10), unknown, config(**RESERVE), NOW).next_evaluation_at == NOW + timedelta(seconds=60)


# ---------------------------------------------------------------------- waking deferrals early
def _asleep(minutes: float | None, i: int) -> RunRequest:
    """A deferred backfill as the sweeper asks for it: no business dates (upstreams are the gate's)."""
    return _bf(minutes, i).model_copy(update={"business_dates": []})


def test_runs_to_wake_takes_the_oldest_deferrals_that_fit_each_holding_a_slot_for_the_next():

    cfg = _reserving(pool=4, critical=2, bulk=4)
    # pool 4: two backfills running past +30 min, when two EOD runs are due (two reserved slots)
    snap = CapacitySnapshot(
        active=[_running(1, ends_in_minutes=60), _running(2, ends_in_minutes=60)],
        upcoming=[_eod_due(30, i=8), _eod_due(30, i=9)],
    )
    oldest_first = [_asleep(10, 1), _asleep(None, 2), _asleep(20, 3), _asleep(15, 4)]
    woken = runs_to_wake(oldest_first, snap, cfg, NOW)
    # bf1 ends before EOD is due; bf2 (unknown duration) would take a slot EOD needs; bf3 ends before
    # EOD too, with bf1 counted as running; then the pool (4) is full and bf4 waits
    assert [r.flow_run_id for r in woken] == ["bf1", "bf3"]
    # every woken run is one the gateway admits, given those woken before it
    for i, r in enumerate(woken):
        held = [_running(10 + j, ends_in_minutes=w.expected_seconds / 60) for j, w in enumerate(woken[:i])]
        grown = snap.model_copy(update={"active": snap.active + held})
        assert isinstance(evaluate(r, grown, cfg, NOW), Admitted)
    # both EOD runs due now: the two free slots are theirs, nothing is woken
    busy = snap.model_copy(update={"upcoming": [_eod_due(0, i=8), _eod_due(0, i=9)]})
    assert runs_to_wake(oldest_first, busy, cfg, NOW) == []


def test_runs_to_wake_wakes_a_deferred_eod_before_an_older_backfill_and_keeps_its_slot_for_it():
    cfg = _reserving(pool=3, critical=2, bulk=3)
    # pool 3, two backfills running for another hour: one free slot. A deferred EOD run (its reservation
    # at its next evaluation, +20 min) and an older deferred backfill of 10 min both ask for it
    eod = RunRequest(flow_run_id="eod9", deployment="eod-scoring", queue="critical", expected_seconds=20 * 60)
    snap = CapacitySnapshot(
        active=[_running(1, ends_in_minutes=60), _running(2, ends_in_minutes=60)],
        upcoming=[_eod_due(20, i=9)],
    )
    oldest_first = [_asleep(10, 1), eod]
    woken = runs_to_wake(oldest_first, snap, cfg, NOW)
    # EOD is asked first (queue priority before age) and takes the slot; the backfill, asked next, finds
    # the pool full (EOD now counts as running, no longer as a reservation: it is not counted twice)
    assert [r.flow_run_id for r in woken] == ["eod9"]
    # with EOD not asking (e.g. deferred for a window), the backfill fits before EOD's reservation
    assert [r.flow_run_id for r in runs_to_wake([_asleep(10, 1)], snap, cfg, NOW)] == ["bf1"]
    # two free slots: EOD takes one, and the backfill the other, EOD's reservation having become its run
    roomy = cfg.model_copy(update={"pool_concurrency_limit": 4})
    assert [r.flow_run_id for r in runs_to_wake(oldest_first, snap, roomy, NOW)] == ["eod9", "bf1"]


def test_runs_to_wake_answers_as_asking_the_gateway_run_by_run():
    """runs_to_wake skips runs alike to one just refused (same deployment, queue, duration, dates) and stops
    at a full pool; on random pools it wakes exactly the runs a plain run-by-run loop wakes."""
    import random

    cfg = _reserving(pool=6, critical=3, bulk=5)

    def plain(deferred, snap):
        woken, active, upcoming = [], list(snap.active), list(snap.upcoming)
        for r in sorted(deferred, key=lambda r: cfg.queue(r.queue).priority):
            grown = snap.model_copy(update={"active": active, "upcoming": upcoming})
            if isinstance(evaluate(r, grown, cfg, NOW), Admitted):
                woken.append(r.flow_run_id)
                end = NOW + timedelta(seconds=r.expected_seconds) if r.expected_seconds is not None else None
                active = [
                    *active,
                    ActiveRun(
                        flow_run_id=r.flow_run_id,
                        deployment=r.deployment,
                        queue=r.queue,
                        state="pending",
                        expected_end=end,
                    ),
                ]
                upcoming = [u for u in upcoming if u.flow_run_id != r.flow_run_id]
        return woken

    rng = random.Random(7)
    for _ in range(200):
        snap = CapacitySnapshot(
            active=[_running(i, rng.choice([5, 20, 60, None])) for i in range(rng.randint(0, 6))],
            upcoming=[_eod_due(rng.choice([0, 10, 30, 90]), i=i) for i in range(rng.randint(0, 3))],
        )
        deferred = [
            _asleep(rng.choice([5, 15, 45, None]), i)
            if rng.random() < 0.8
            else RunRequest(flow_run_id=f"eod{i}", deployment="eod-scoring", queue="critical", expected_seconds=1200)
            for i in range(rng.randint(0, 10))
        ]
        assert [r.flow_run_id for r in runs_to_wake(deferred, snap, cfg, NOW)] == plain(deferred, snap)


def test_reservation_respects_the_reserved_runs_own_queue_cap():
    """A higher-priority run cannot start while its own queue is full, so it reserves a pool slot from when
    a slot of its queue frees, not from its due time; unknown ends do not move a reservation (conservative
    for EOD)."""
    cfg = _reserving(pool=2, critical=1, bulk=2)
    # two EOD runs of 20 min due at +10 behind a critical cap of 1: they start at +10 and +30, one at a
    # time, so a 60-min backfill always leaves them their one slot (before: two slots reserved at +10)
    two_due = CapacitySnapshot(upcoming=[_eod_due(10, i=1), _eod_due(10, i=2)], completed=READY)
    assert evaluate(_bf(60), two_due, cfg, NOW).admitted
    # an EOD run holds the critical queue until +25: the next one starts then, not at its due time (+10)
    eod_running = _running(1, ends_in_minutes=25, queue="critical")
    held = CapacitySnapshot(active=[eod_running], upcoming=[_eod_due(10, i=2)], completed=READY)
    assert evaluate(_bf(30), held, cfg, NOW).admitted  # ends at +30: the EOD run (+25 to +45) has the other
    late = evaluate(_bf(60), held.model_copy(update={"active": [eod_running, _running(3, 90)]}), cfg, NOW)
    assert late.deferral_reason_code is DeferralReason.PRIORITY_CONFLICT
    assert (NOW + timedelta(minutes=25)).isoformat() in late.explanation  # the reservation as planned
    # the running critical run's end is unknown: the reservation stays at its due time and blocks
    unknown = held.model_copy(update={"active": [_running(1, ends_in_minutes=None, queue="critical")]})
    assert evaluate(_bf(30), unknown, cfg, NOW).deferral_reason_code is DeferralReason.PRIORITY_CONFLICT

"""A capacity deferral's predicted start: the forward list schedule over the runs queued before it, the
running runs' expected ends and the higher-priority reservations (pure rule, hand-computed cases)."""

from datetime import UTC, datetime, timedelta

from releasegate.policy.active_runs import ActiveRun
from releasegate.policy.gateway_config import GatewayConfig, QueueConfig
from releasegate.policy.start_prediction import QueuedRun, predict_starts

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def _cfg(pool: int, critical: int | None = None, bulk: int | None = None) -> GatewayConfig:
    return GatewayConfig(
        pool_name="p",
        pool_concurrency_limit=pool,
        queues=[
            QueueConfig(name="critical", priority=1, concurrency_limit=critical or pool),
            QueueConfig(name="bulk", priority=10, concurrency_limit=bulk or pool),
        ],
    )


def _running(name: str, ends_in: float | None, queue: str = "bulk") -> ActiveRun:
    end = _at(ends_in) if ends_in is not None else None
    return ActiveRun(flow_run_id=name, deployment="x", queue=queue, state="running", expected_end=end)


def _reserved(name: str, starts_in: float, minutes: float) -> ActiveRun:
    return ActiveRun(
        flow_run_id=name,
        deployment="eod-scoring",
        queue="critical",
        state="scheduled",
        expected_start=_at(starts_in),
        expected_seconds=minutes * 60,
    )


def _waiting(name: str, since: float, minutes: float | None, queue: str = "bulk") -> QueuedRun:
    seconds = minutes * 60 if minutes is not None else None
    return QueuedRun(flow_run_id=name, queue=queue, since=_at(since), expected_seconds=seconds)


def test_three_deferred_runs_behind_two_running_ones_start_in_turn():
    # pool of 2, both slots held until +10 and +20; three runs of 30 min queued in this order: the first
    # takes the slot freed at +10, the second the one freed at +20, the third the first one's at +40
    active = [_running("a1", 10), _running("a2", 20)]
    line = [_waiting("w3", -1, 30), _waiting("w1", -3, 30), _waiting("w2", -2, 30)]
    got = predict_starts(line, active, [], _cfg(pool=2), NOW)
    assert got == {"w1": _at(10), "w2": _at(20), "w3": _at(40)}


def test_a_reservation_in_the_way_holds_a_long_run_back_but_not_a_short_one():
    # pool of 2: a1 ends at +10, a2 at +60; an EOD run reserves a slot from +15 for 60 min. The 30-min run
    # first in line would take the EOD run's slot from +15 at +10: it waits for a2's end at +60 (the EOD
    # run holds the other slot until +75). The 5-min run behind it is done by +15: it starts at +10.
    active = [_running("a1", 10), _running("a2", 60)]
    line = [_waiting("long", -5, 30), _waiting("short", -1, 5)]
    got = predict_starts(line, active, [_reserved("eod", 15, 60)], _cfg(pool=2), NOW)
    assert got == {"long": _at(60), "short": _at(10)}
    # without the reservation the long run takes the slot freed at +10
    assert predict_starts(line, active, [], _cfg(pool=2), NOW)["long"] == _at(10)


def test_a_higher_priority_run_jumps_ahead_of_older_bulk_runs():
    # pool of 1 held until +10: the critical run deferred a minute ago starts first, then the bulk runs
    # deferred half an hour ago, in their order
    line = [_waiting("b1", -30, 20), _waiting("b2", -20, 20), _waiting("c1", -1, 15, queue="critical")]
    got = predict_starts(line, [_running("a1", 10)], [], _cfg(pool=1), NOW)
    assert got == {"c1": _at(10), "b1": _at(25), "b2": _at(45)}


def test_a_full_queue_holds_its_runs_while_the_pool_has_room():
    # pool of 4, bulk capped at 1 (held until +5): bulk runs start one after the other; the critical run
    # starts now on a free pool slot
    line = [_waiting("b1", -3, 10), _waiting("b2", -2, 10), _waiting("c1", -1, 10, queue="critical")]
    got = predict_starts(line, [_running("a1", 5)], [], _cfg(pool=4, bulk=1), NOW)
    assert got == {"c1": NOW, "b1": _at(5), "b2": _at(15)}


def test_unknown_ends_free_now_and_a_start_is_never_before_its_due_time_or_now():
    # a running run of unknown end counts as free now (the prediction is early, never late by it); a run
    # due in 7 min starts then; a queue of one run of unknown duration holds a slot for one step
    line = [
        _waiting("w1", -2, None),
        QueuedRun(flow_run_id="w2", queue="bulk", since=_at(-1), ready_at=_at(7), expected_seconds=600),
    ]
    got = predict_starts(line, [_running("a1", None)], [], _cfg(pool=1), NOW)
    assert got == {"w1": NOW, "w2": _at(7)}


def test_a_reserved_run_that_is_also_waiting_is_placed_once_and_until_stops_early():
    # the EOD run is both a reservation and waiting (deferred): placed once, as waiting, first by priority
    line = [_waiting("eod", -1, 30, queue="critical"), _waiting("w1", -5, 10), _waiting("w2", -4, 10)]
    res = [_reserved("eod", 0, 30)]
    got = predict_starts(line, [_running("a1", 10)], res, _cfg(pool=2), NOW)
    assert got == {"eod": NOW, "w1": _at(10), "w2": _at(20)}
    assert predict_starts(line, [_running("a1", 10)], res, _cfg(pool=2), NOW, until="w1") == {
        "eod": NOW,
        "w1": _at(10),
    }


def test_a_start_between_steps_is_rounded_up_to_the_next_minute():
    got = predict_starts([_waiting("w1", -1, 10)], [_running("a1", 4.5)], [], _cfg(pool=1), NOW)
    assert got == {"w1": _at(5)}

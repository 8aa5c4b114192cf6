"""Runs held behind a pool or queue cap: which cap, and when each is predicted to start (pure rule)."""

from datetime import UTC, datetime, timedelta

from releasegate.policy.capacity import ActiveRun
from releasegate.policy.deferrals import WaitingRun, cap_waits
from releasegate.policy.gateway_config import GatewayConfig, QueueConfig

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def _cfg(pool: int, critical: int, bulk: int) -> GatewayConfig:
    return GatewayConfig(
        pool_name="p",
        pool_concurrency_limit=pool,
        queues=[
            QueueConfig(name="critical", priority=1, concurrency_limit=critical),
            QueueConfig(name="bulk", priority=10, concurrency_limit=bulk),
        ],
    )


def _running(i: int, queue: str, ends_in_min: float | None) -> ActiveRun:
    end = NOW + timedelta(minutes=ends_in_min) if ends_in_min is not None else None
    return ActiveRun(flow_run_id=f"r{i}", deployment="x", queue=queue, state="running", expected_end=end)


def _waiting(i: int, queue: str, due_min_ago: float = 5, minutes: float = 10) -> WaitingRun:
    return WaitingRun(
        flow_run_id=f"w{i}",
        deployment="backfill" if queue == "bulk" else "eod-scoring",
        queue=queue,
        due=NOW - timedelta(minutes=due_min_ago),
        expected_seconds=minutes * 60,
    )


def test_a_full_queue_holds_its_runs_and_predicts_them_in_turn():
    cfg = _cfg(pool=6, critical=2, bulk=2)
    active = [_running(0, "bulk", 10), _running(1, "bulk", 20)]
    out = cap_waits([_waiting(i, "bulk") for i in range(3)], active, cfg, NOW)
    assert [w.reason_code for w in out] == ["QUEUE_LIMIT"] * 3
    assert [w.predicted_start_at for w in out] == [NOW + timedelta(minutes=m) for m in (10, 20, 20)]


def test_a_full_pool_is_capacity_limit_and_higher_priority_goes_first():
    cfg = _cfg(pool=2, critical=2, bulk=2)
    active = [_running(0, "bulk", 10), _running(1, "bulk", 30)]
    out = cap_waits([_waiting(0, "bulk", due_min_ago=20), _waiting(1, "critical", due_min_ago=1)], active, cfg, NOW)
    by_id = {w.flow_run_id: w for w in out}
    assert by_id["w1"].reason_code == "CAPACITY_LIMIT" and by_id["w1"].predicted_start_at == NOW + timedelta(minutes=10)
    # the older backfill waits behind the EOD run, Prefect's queue priority order
    assert by_id["w0"].predicted_start_at == NOW + timedelta(minutes=20)


def test_a_run_with_a_free_slot_is_not_waiting_for_a_cap():
    cfg = _cfg(pool=4, critical=2, bulk=2)
    out = cap_waits([_waiting(0, "bulk")], [_running(0, "bulk", 10)], cfg, NOW)
    assert out == []  # a slot is free: its worker simply has not polled yet


def test_an_unknown_end_frees_its_slot_now_so_the_prediction_is_early_not_late():
    cfg = _cfg(pool=1, critical=1, bulk=1)
    out = cap_waits([_waiting(0, "bulk"), _waiting(1, "bulk")], [_running(0, "bulk", None)], cfg, NOW)
    assert [w.flow_run_id for w in out] == ["w1"]  # the first takes the slot freed "now"
    assert out[0].predicted_start_at == NOW + timedelta(minutes=10)

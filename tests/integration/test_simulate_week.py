"""The simulation on whole weeks: what holds only on the default workload's week, not on one day
(the day-sized properties: tests/unit/test_simulate.py)."""

from releasegate.tools.simulate import SimConfig, simulate


def test_the_reservation_rule_defers_no_longer_than_the_priority_window_rule_on_the_default_week():
    """Measured on the default workload (bench/RESULTS.md): EOD on time under both rules, and backfills
    held back by EOD for less time when they are held only where they would take EOD's slot."""
    r = simulate(SimConfig())
    first, res = r.releasegate, r.reservation
    assert first.eod_on_time_share == res.eod_on_time_share == 1.0
    conflict = "PRIORITY_CONFLICT"
    assert res.deferrals_by_reason[conflict].p95_minutes < first.deferrals_by_reason[conflict].p95_minutes
    assert res.all_delay_p95_minutes <= first.all_delay_p95_minutes

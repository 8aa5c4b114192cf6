"""The simulation's lower bound: exact on a case small enough to schedule by hand, and never above what a
schedule that keeps the windows achieved."""

from datetime import UTC, date, datetime, time

import numpy as np
import pytest

from releasegate.tools import simulate as sim
from releasegate.tools.sim_bound import _Bound, effective_releases, lower_bound
from releasegate.tools.simulate import WORKLOADS, SimConfig, build_workload, simulate_workloads


def test_three_hour_long_runs_on_one_slot():
    # released together; any order gives delays 0, 60 and 120 min: two runs wait over 30 min, one over 60
    rel = np.zeros(3, dtype=np.int64)
    b = _Bound(rel, rel, np.full(3, 3600), cap=1)
    assert b.late(30) == 2 and b.late(60) == 1 and b.late(120) == 0
    lb = lower_bound([0, 0, 0], rel, [3600] * 3, 1, (30, 60))
    assert lb.all_sla_alert_share == pytest.approx(2 / 3, abs=1e-3)
    assert lb.all_sla_incident_share == pytest.approx(1 / 3, abs=1e-3)


def test_enough_slots_means_no_forced_wait():
    rel = np.arange(0, 50 * 60, 60, dtype=np.int64)
    b = _Bound(rel, rel, np.full(len(rel), 1800), cap=len(rel))
    assert b.late(0) == 0


def test_a_window_forces_the_runs_released_inside_it():
    rel = np.array([0, 0], dtype=np.int64)
    eff = np.array([0, 2 * 3600], dtype=np.int64)  # the second run was released into a 2-hour freeze
    b = _Bound(rel, eff, np.array([600, 600]), cap=10)
    assert b.late(60) == 1 and b.late(120) == 0


@pytest.mark.parametrize("seed", [1, 2])
def test_no_schedule_of_the_simulation_beats_the_bound(seed, monkeypatch):
    """Both gateway rules keep the windows, so each is a schedule the bound covers: at every threshold at
    least as many of their runs waited longer than the bound says must."""
    cfg = SimConfig(days=1, deployments=40, seed=seed, pool_cap=4, start=date(2026, 11, 24))  # a storm day
    runs, gw, _ = build_workload(cfg)
    t0 = datetime.combine(cfg.start, time(0), tzinfo=UTC)
    eff = effective_releases([r.scheduled for r in runs], [r.deployment for r in runs], gw, t0)
    release, durations = np.array([r.scheduled for r in runs]), np.array([r.duration for r in runs])
    b = _Bound(release, eff, durations, gw.pool_concurrency_limit)
    eod = np.array([r.kind == "eod" for r in runs])
    b_eod = _Bound(release, eff, durations, gw.pool_concurrency_limit, eod, cfg.on_time_minutes)
    schedules = []
    real = sim.result

    def keep(name, rs, *rest):  # the model's own runs, as it scheduled them
        schedules.append(rs)
        return real(name, rs, *rest)

    monkeypatch.setattr(sim, "result", keep)
    for rule in ("priority_window", "reservation"):
        res = sim.run_model(runs, gw.model_copy(update={"admission": rule}), cfg, gated=True)
        assert res.started_in_window == 0 and res.started == len(runs)
        for d in (0, 10, 30, 60, 120, 240):
            late = sum(1 for r in schedules[-1] if (r.started - r.scheduled) / 60 > d)
            assert b.late(d) <= late, (rule, d)
        # they start every EOD run on time, so the tighter bound (EOD on time) covers them too
        assert all((r.started - r.scheduled) / 60 <= cfg.on_time_minutes for r in schedules[-1] if r.kind == "eod")
        for d in (0, 10, 30, 60, 120, 240):
            late = sum(1 for r in schedules[-1] if (r.started - r.scheduled) / 60 > d)
            assert b_eod.late(d) <= late, (rule, d)
    assert b.late(30) > 0  # the pool of 4 is overloaded: the bound has something to say


def test_an_eod_run_kept_on_time_holds_its_slot_in_the_bound():
    """One slot; an EOD run of 2 h and a backfill of 30 min both released at 0. Any schedule may run the
    backfill first (EOD waits 30 min: nobody waits over an hour); one that starts EOD on time makes the
    backfill wait 2 h, and the EOD bound says so, never counting the EOD run itself late."""
    release, durations = [0, 0], [2 * 3600, 30 * 60]
    eff = np.array(release)
    free = lower_bound(release, eff, durations, 1, (30, 60))
    kept = lower_bound(release, eff, durations, 1, (30, 60), fixed=[True, False], on_time_minutes=5)
    assert free.all_sla_incident_share == 0.0
    assert kept.all_sla_incident_share == 0.5  # the backfill, only


def test_workloads_table_has_every_named_workload_and_bad_names_are_refused():
    base = SimConfig(days=1, deployments=30)
    reports = simulate_workloads(["default", "eod-freeze"], base)
    assert [r.workload for r in reports] == ["default", "eod-freeze"]
    for r in reports:
        for m in (r.releasegate, r.reservation):
            assert m.all_delay_p95_minutes >= r.lower_bound.all_delay_p95_minutes
            assert m.all_sla_incident_share >= r.lower_bound.all_sla_incident_share
    assert set(WORKLOADS) == {"default", "heavy-storm", "small-pool", "eod-freeze"}
    with pytest.raises(ValueError, match="workloads: unknown"):
        simulate_workloads(["nope"], base)

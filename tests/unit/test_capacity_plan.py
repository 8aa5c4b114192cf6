"""The capacity plan: the smallest pool that keeps EOD on time and the open deferral p95 within the SLA,
checked by the simulator (small workloads: a day of 30 deployments)."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from releasegate.cli import app
from releasegate.tools.capacity_plan import WhatIf, apply_what_if, evaluate_pool, history_workload, plan_capacity
from releasegate.tools.sim_workload import SimConfig, SimRun, build_workload
from tests.conftest import ROOT


def _workload(**kw):
    cfg = SimConfig(days=1, deployments=30, seed=7, storm_weekdays=[0], **kw)  # 2026-11-23 is a Monday
    runs, gw, _ = build_workload(cfg)
    return runs, gw.model_copy(update={"admission": "reservation"}), cfg


def test_the_plan_is_the_smallest_pool_that_meets_both_goals():
    runs, gw, cfg = _workload()
    fast = plan_capacity(runs, gw, cfg, "test")
    full = plan_capacity(runs, gw, cfg, "test", exhaustive=True)
    assert full.recommended_pool_cap is not None
    rows = {r.pool: r for r in full.rows}
    assert set(rows) >= set(range(1, full.recommended_pool_cap + 1))  # every pool up to the answer checked
    best = rows[full.recommended_pool_cap]
    assert best.meets and best.eod_on_time_share == 1.0 and best.open_p95_minutes <= cfg.sla_alert_minutes
    assert all(not rows[p].meets for p in range(1, full.recommended_pool_cap))
    # bisection lands within 10 % of the exhaustive answer, and what it recommends meets the goals
    assert fast.recommended_pool_cap is not None
    assert full.recommended_pool_cap <= fast.recommended_pool_cap <= 1.1 * full.recommended_pool_cap
    assert {r.pool: r for r in fast.rows}[fast.recommended_pool_cap].meets


# The plan of ``_workload()`` as the simulator gave it before its snapshots, reservation plans and
# window checks were made cheaper (commit 42a06ec, which counted every run in plain loops): (pool,
# EOD on time, waited runs, open p50, open p95, held p95, utilisation) of each pool checked. Making
# the simulation faster must not move a figure; a change of the admission rule itself may, and then
# these are re-derived from the new rule.
PLAN_BEFORE_THE_FAST_PATH = [
    (4, 1.0, 67, 173.67, 292.08, 56.88, 0.4007),
    (8, 1.0, 43, 80.42, 137.51, 52.39, 0.2122),
    (16, 1.0, 30, 39.06, 56.26, 45.79, 0.1061),
    (22, 1.0, 24, 25.87, 33.92, 33.59, 0.0771),
    (23, 1.0, 23, 24.5, 29.1, 29.1, 0.0738),
    (24, 1.0, 22, 22.72, 27.07, 26.09, 0.0707),
    (25, 1.0, 21, 22.18, 26.1, 25.63, 0.0679),
    (32, 1.0, 14, 15.52, 17.36, 17.36, 0.053),
]


@pytest.mark.parametrize("workers", [1, 2])
def test_the_plan_is_the_one_the_straightforward_simulator_gave(workers):
    runs, gw, cfg = _workload()
    plan = plan_capacity(runs, gw, cfg, "test", workers=workers)
    assert plan.recommended_pool_cap == 23
    fields = ("pool", "eod_on_time_share", "waited_runs", "open_p50_minutes", "open_p95_minutes")
    fields += ("held_p95_minutes", "utilisation")
    got = [tuple(getattr(r, f) for f in fields) for r in plan.rows]
    assert got == PLAN_BEFORE_THE_FAST_PATH


def test_a_smaller_pool_makes_runs_wait_longer():
    runs, gw, cfg = _workload()
    tight, roomy = evaluate_pool(runs, gw, cfg, 1), evaluate_pool(runs, gw, cfg, 40)
    assert tight.waited_runs > roomy.waited_runs
    assert tight.open_p95_minutes > roomy.open_p95_minutes
    assert not tight.meets


def test_a_queue_capped_below_the_pool_keeps_its_share():
    runs, gw, cfg = _workload()
    queues = [q.model_copy(update={"concurrency_limit": 1}) if q.name == "bulk" else q for q in gw.queues]
    gw = gw.model_copy(update={"pool_concurrency_limit": 4, "queues": queues})
    row = evaluate_pool(runs, gw, cfg, 8)
    assert row.queue_caps == {"critical": 8, "bulk": 2}


def test_a_freeze_is_not_a_capacity_wait():
    """A run due inside a change freeze waits for the window's end whatever the pool: that wait is not
    counted on the deferral SLA's clock (no pool could shorten it)."""
    _, gw, cfg = _workload()
    freeze_start = 2 * 86400 + 10 * 3600 - 3600  # Wednesday 10:00 Zurich (UTC+1), seconds from Monday 00:00 UTC
    runs = [SimRun(0, "backfill-0", "backfill", "bulk", freeze_start + 600, 600, expected=900, key=freeze_start + 600)]
    cfg3 = cfg.model_copy(update={"days": 3})
    row = evaluate_pool(runs, gw, cfg3, 4)
    assert row.waited_runs == 0 and row.meets


def test_what_if_adds_removes_and_moves_deployments():
    runs, gw, cfg = _workload()
    added = apply_what_if(runs, gw, 1, [WhatIf("add", "new-eod", "critical", (17 * 60 + 30,), 20)])
    assert len(added) == len(runs) + 1
    new = next(r for r in added if r.deployment == "new-eod")
    assert new.kind == "eod" and new.scheduled == (17 * 60 + 30) * 60 and new.duration == 1200
    removed = apply_what_if(runs, gw, 1, [WhatIf("remove", "eod-0")])
    assert all(r.deployment != "eod-0" for r in removed) and len(removed) < len(runs)
    moved = apply_what_if(runs, gw, 1, [WhatIf("times", "eod-0", daily_minutes=(60,))])
    assert [r.scheduled for r in moved if r.deployment == "eod-0"] == [3600]
    with pytest.raises(ValueError, match="has no runs"):
        apply_what_if(runs, gw, 1, [WhatIf("times", "nope", daily_minutes=(60,))])
    with pytest.raises(ValueError, match="not in the capacity policy"):
        apply_what_if(runs, gw, 1, [WhatIf("add", "x", "nope", (60,), 5)])


def test_history_becomes_a_workload_from_midnight_utc():
    _, gw, _ = _workload()
    t = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)
    runs, start = history_workload(
        [("eod-scoring", "critical", t, 600.0), ("backfill", "", t + timedelta(hours=1), 1800.0)], gw
    )
    assert start == t.date()
    assert [(r.deployment, r.kind, r.queue, r.scheduled, r.duration) for r in runs] == [
        ("eod-scoring", "eod", "critical", 17 * 3600 + 1800, 600),
        ("backfill", "other", "critical", 18 * 3600 + 1800, 1800),  # no queue known: the top queue
    ]
    with pytest.raises(ValueError, match="no run"):
        history_workload([], gw)


def test_cli_plans_a_workload_as_json_and_policy_check_warns_below_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RELEASEGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELEASEGATE_PROJECT_DIR", str(ROOT))
    runner = CliRunner()
    res = runner.invoke(
        app, ["capacity", "plan", "--workload", "default", "--days", "1", "--deployments", "30", "--json"]
    )
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["recommended_pool_cap"] >= 1 and plan["rows"]
    assert {"pool", "eod_on_time_share", "open_p95_minutes", "held_p95_minutes", "meets"} <= set(plan["rows"][0])
    saved = tmp_path / "home" / "capacity-plan.json"
    plan["recommended_pool_cap"] = 999  # as if the last plan had asked for more than the shipped pool
    saved.write_text(json.dumps(plan))
    res = runner.invoke(app, ["policy", "check", str(ROOT / "prefect.yaml")])
    assert res.exit_code == 0, res.output
    assert "below the last capacity plan's recommendation 999" in " ".join(res.output.split())


def test_cli_refuses_a_bad_what_if_with_exit_2(tmp_path, monkeypatch):
    monkeypatch.setenv("RELEASEGATE_HOME", str(tmp_path / "home"))
    res = CliRunner().invoke(app, ["capacity", "plan", "--workload", "default", "--what-if", "bogus"])
    assert res.exit_code == 2
    assert "--what-if" in res.output and "Traceback" not in res.output

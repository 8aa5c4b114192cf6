"""The simulation: deterministic, the gateway's own code in the loop, and the comparison's invariants."""

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from releasegate.cli import app
from releasegate.policy import capacity
from releasegate.tools.simulate import SimConfig, build_workload, run_model, simulate

TUESDAY = date(2026, 11, 24)  # a storm day (backfill storms on Tuesdays and Thursdays), EOD scoring too
SMALL = SimConfig(days=1, deployments=40, seed=7, start=TUESDAY)


def test_same_seed_same_report():
    a, b = simulate(SMALL), simulate(SMALL)
    strip = lambda r: {k: v for k, v in r.model_dump().items() if k != "seconds"}  # noqa: E731
    assert strip(a.prefect_native) == strip(b.prefect_native)
    assert strip(a.releasegate) == strip(b.releasegate)
    assert strip(a.reservation) == strip(b.reservation)


@pytest.mark.parametrize("admission", ["priority_window", "reservation"])
def test_every_start_in_the_gated_model_went_through_capacity_evaluate(monkeypatch, admission):
    """The simulation asks the gateway through ``capacity.decider`` (one snapshot's answers reused while
    the pool does not change); every answer is the one a fresh ``capacity.evaluate`` gives."""
    calls, wakes = [], []
    real = capacity.decider

    def spy(into):
        def bound(snapshot, config, now):
            decide = real(snapshot, config, now)

            def answer(request):
                d = decide(request)
                assert d == capacity.evaluate(request, snapshot, config, now)
                into.append(d)
                return d

            return answer

        return bound

    monkeypatch.setattr("releasegate.tools.simulate.decider", spy(calls))
    # the deferral sweeper's wake questions (policy.deferrals.runs_to_wake) go through the same rule
    monkeypatch.setattr("releasegate.policy.deferrals.decider", spy(wakes))
    runs, gw, _ = build_workload(SMALL)
    gw = gw.model_copy(update={"admission": admission})
    res = run_model(runs, gw, SMALL, gated=True)
    assert res.gateway_evaluations == len(calls)
    assert sum(d.admitted for d in calls) == res.started == len(runs)  # one admission per run, all ran
    codes = {d.deferral_reason_code for d in calls if not d.admitted}
    assert codes and codes <= set(capacity.DeferralReason)
    assert set(res.deferrals_by_reason) == {c.value for c in codes}
    assert sum(s.deferrals for s in res.deferrals_by_reason.values()) == len(calls) - len(runs)
    assert wakes and any(d.admitted for d in wakes)  # the sweeper woke some deferrals early


def test_gateway_keeps_windows_and_eod_priority_that_native_dispatch_does_not():
    # one day that has all three: EOD scoring, a backfill storm and a change freeze on bulk runs
    r = simulate(SimConfig(days=1, deployments=60, seed=3, start=TUESDAY, eod_freeze_weekdays=[TUESDAY.weekday()]))
    n, g = r.prefect_native, r.releasegate
    assert g.started_in_window == 0 and n.started_in_window > 0
    assert g.eod_on_time_share >= n.eod_on_time_share
    assert g.eod_delay_max_minutes <= n.eod_delay_max_minutes
    assert n.runs == g.runs == sum(r.runs_by_kind.values())
    assert not n.deferrals_by_reason and n.gateway_evaluations == 0
    res = r.reservation  # the reservation rule keeps the same two promises
    assert res.started_in_window == 0 and res.eod_on_time_share >= n.eod_on_time_share
    assert res.runs == res.started
    for m in (g, res):  # every run deferred for a code counts under it; its open time under its last code
        for st in m.deferrals_by_reason.values():
            assert st.deferrals >= st.runs >= st.open_runs
        assert sum(st.open_runs for st in m.deferrals_by_reason.values()) <= m.runs


def test_reserved_bulk_slots_are_a_configuration_choice():
    r = simulate(SimConfig(days=1, deployments=40, pool_cap=4, bulk_cap=2))
    assert r.pool_cap == 4 and r.prefect_native.started == r.prefect_native.runs


def test_cli_prints_both_models_and_json(monkeypatch):
    from releasegate.cli._common import console

    monkeypatch.setattr(console, "width", 160)  # three model columns: a wide terminal
    res = CliRunner().invoke(app, ["simulate", "--days", "1", "--deployments", "30"])
    assert res.exit_code == 0, res.output
    for text in ("prefect-native", "priority window", "reservation", "EOD started on time", "deferral reason"):
        assert text in res.output
    res = CliRunner().invoke(app, ["simulate", "--days", "1", "--deployments", "30", "--json"])
    doc = json.loads(res.output)
    assert doc["releasegate"]["eod_runs"] == doc["prefect_native"]["eod_runs"] > 0


def test_bad_input_names_the_field():
    res = CliRunner().invoke(app, ["simulate", "--days", "0"])
    assert res.exit_code == 2 and "days" in res.output
    with pytest.raises(ValueError, match="deployments"):
        SimConfig(deployments=1)


def test_cli_workloads_table_and_unknown_workload(monkeypatch):
    from releasegate.cli._common import console

    monkeypatch.setattr(console, "width", 220)
    args = ["simulate", "--days", "1", "--deployments", "30", "--workloads", "default,small-pool"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    for text in ("default", "small-pool", "lower bound", "reservation", "p95 / bound"):
        assert text in res.output
    res = CliRunner().invoke(app, ["simulate", "--days", "1", "--workloads", "nope"])
    assert res.exit_code == 2 and "workloads: unknown" in res.output
    res = CliRunner().invoke(app, [*args, "--json"])
    docs = json.loads(res.stdout)
    assert [d["workload"] for d in docs] == ["default", "small-pool"]
    assert docs[1]["pool_cap"] < docs[0]["pool_cap"]

"""Monitoring checks and the rollback-vs-retrain decision tree (pure, no Prefect)."""

import numpy as np
import pytest
from credit_example.data import FEATURES, generate
from hypothesis import given
from hypothesis import strategies as st

from releasegate.policy.monitoring import (
    MonitoringPolicy,
    evaluate,
    latency_percentiles,
    metric_drop,
    missing_rate,
    schema_violations,
)
from releasegate.policy.rollback_tree import Action, Stage, TreeInput, decide


def _eval(cur, **kw):
    ref = generate(4000, seed=1).X
    args = dict(rows=len(cur), failures=0, latency_ms={"p95": 10.0}, metric_now=0.8, metric_baseline=0.8)
    return evaluate(MonitoringPolicy(), reference=ref, current=cur, features=FEATURES, **(args | kw))


def test_a_calm_batch_breaches_nothing():
    rep = _eval(generate(5000, seed=2).X)
    assert rep.breached == [] and rep.max_psi < 0.1


def test_injected_drift_breaches_psi():
    rep = _eval(generate(5000, seed=2, drift=0.35).X)
    assert [c.name for c in rep.breached] == ["drift_psi"] and rep.max_psi > 0.3


def test_each_threshold_is_strict_and_named():
    cur = generate(1000, seed=3).X.copy()
    cur[:60, 0] = np.nan  # 6 % missing in the first feature
    rep = _eval(cur, failures=11, latency_ms={"p95": 501.0}, metric_now=0.75, metric_baseline=0.8)
    names = {c.name for c in rep.breached}
    assert names == {"missing_rate", "failure_rate", "latency_p95_ms", "metric_drop"}
    assert next(c for c in rep.checks if c.name == "missing_rate").detail == f"max on {FEATURES[0]}"
    at_limit = _eval(
        generate(1000, seed=3).X, failures=10, latency_ms={"p95": 500.0}, metric_now=0.76, metric_baseline=0.8
    )
    assert at_limit.breached == []  # 1 % failures, p95 = SLA and a 5 % drop are within limits


def test_thresholds_come_from_the_monitoring_block_file():
    import yaml

    from tests.conftest import ROOT

    p = MonitoringPolicy.model_validate(yaml.safe_load((ROOT / "blocks" / "monitoring_thresholds.yaml").read_text()))
    assert p == MonitoringPolicy()  # the file holds the seeds' defaults
    t = p.tree_thresholds()
    assert (t.psi_plan, t.psi_urgent, t.drop_canary, t.drop_severe) == (0.2, 0.3, 0.05, 0.10)


def test_schema_violations_and_helpers():
    x = np.array([[1.0, np.inf], [2.0, 3.0]])
    assert schema_violations(x, ["a", "b"], ["a", "b"]) == ["1 infinite values"]
    assert schema_violations(x, ["b", "a"], ["a", "b"]) == ["column order differs", "1 infinite values"]
    assert "missing ['c']" in schema_violations(x, ["a", "b"], ["a", "b", "c"])[0]
    assert missing_rate(np.array([[np.nan, 1.0], [2.0, 3.0]])).tolist() == [0.5, 0.0]
    assert latency_percentiles(list(range(1, 101)))["p50"] == pytest.approx(50.5)
    assert metric_drop(0.9, 1.0) == pytest.approx(0.1) and metric_drop(0.9, None) is None


@pytest.mark.parametrize(
    ("stage", "psi", "drop", "impact", "action", "code", "retrain"),
    [
        (Stage.full, 0.0, 0.0, True, Action.rollback, "BUSINESS_IMPACT", False),
        (Stage.canary, 0.31, 0.0, False, Action.rollback, "DRIFT_URGENT", True),
        (Stage.full, 0.1, 0.11, False, Action.rollback, "KPI_DROP_SEVERE", False),
        (Stage.canary, 0.1, 0.07, False, Action.drop_challenger, "KPI_DROP_CANARY", False),
        (Stage.shadow, 0.1, 0.05, False, Action.drop_challenger, "KPI_DROP_CANARY", False),
        (Stage.ab, 0.1, 0.10, False, Action.drop_challenger, "KPI_DROP_CANARY", False),
        (Stage.full, 0.1, 0.07, False, Action.rollback, "KPI_DROP_FULL", False),
        (Stage.post_retrain, 0.1, 0.07, False, Action.rollback, "KPI_DROP_FULL", False),
        (Stage.full, 0.25, 0.01, False, Action.plan_retrain, "DRIFT_PLAN", True),
        (Stage.full, 0.3, 0.0, False, Action.plan_retrain, "DRIFT_PLAN", True),
        (Stage.full, 0.19, 0.049, False, Action.monitor, "WITHIN_LIMITS", False),
        (Stage.canary, 0.0, None, False, Action.monitor, "WITHIN_LIMITS", False),
    ],
)
def test_decision_tree_case_by_case(stage, psi, drop, impact, action, code, retrain):
    r = decide(TreeInput(stage=stage, max_psi=psi, metric_drop=drop, business_impact=impact))
    assert (r.action, r.reason_code, r.retrain) == (action, code, retrain)


@given(
    st.sampled_from(list(Stage)),
    st.floats(0, 2, allow_nan=False),
    st.floats(-1, 1, allow_nan=False),
    st.booleans(),
)
def test_tree_never_drops_a_challenger_that_is_not_there(stage, psi, drop, impact):
    r = decide(TreeInput(stage=stage, max_psi=psi, metric_drop=drop, business_impact=impact))
    if stage in (Stage.full, Stage.post_retrain):
        assert r.action is not Action.drop_challenger
    if impact or psi > 0.3 or drop > 0.10:
        assert r.action is Action.rollback


def test_psi_in_threads_equals_psi_in_one_thread(monkeypatch):
    import numpy as np

    from releasegate.policy import psi as psi_mod

    rng = np.random.default_rng(5)
    ref, cur = rng.normal(size=(20_000, 7)), rng.normal(0.2, 1.1, size=(20_000, 7))
    cur[rng.random(cur.shape) < 0.02] = np.nan
    monkeypatch.setattr(psi_mod, "_PARALLEL_MIN_VALUES", 10**12)
    serial = psi_mod.psi(ref, cur)
    monkeypatch.setattr(psi_mod, "_PARALLEL_MIN_VALUES", 1)
    monkeypatch.setattr(psi_mod.os, "cpu_count", lambda: 4)
    assert np.array_equal(psi_mod.psi(ref, cur), serial)


def test_an_all_missing_feature_does_not_hide_drift_elsewhere():
    import numpy as np

    from releasegate.policy.monitoring import MonitoringPolicy, evaluate

    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=(5000, 3)), rng.normal(size=(5000, 3))
    cur[:, 1] += 3.0  # strong drift on b
    cur[:, 2] = np.nan  # c entirely missing
    r = evaluate(
        MonitoringPolicy(), reference=ref, current=cur, features=["a", "b", "c"], rows=5000, failures=0, latency_ms={}
    )
    by = {c.name: c for c in r.checks}
    assert by["drift_psi"].breached and by["drift_psi"].detail == "max on b" and r.max_psi > 1
    assert by["schema"].breached and "no values for c" in by["schema"].detail
    assert by["missing_rate"].breached


@given(st.floats(0, 2, allow_nan=False))
def test_retrain_gateway_and_tree_read_psi_alike(psi):
    """One rule for both (releasegate.policy.thresholds): urgent exactly where the tree rolls back for drift."""
    from datetime import UTC, datetime

    from releasegate.policy.retrain import RetrainPolicy, RetrainSignals, retrain_gateway

    tree = decide(TreeInput(stage=Stage.full, max_psi=psi, metric_drop=0.0))
    signals = RetrainSignals(psi={"x": psi}, kpi_drop=0.0, trigger="drift")
    gateway = retrain_gateway(signals, RetrainPolicy(), datetime(2026, 11, 23, tzinfo=UTC))
    assert (tree.reason_code == "DRIFT_URGENT") == (gateway.reason_code == "DRIFT_URGENT")
    assert (tree.reason_code == "DRIFT_PLAN") == (gateway.reason_code == "RETRAIN_PLANNED")

"""A crashed run's retry under its runtime policy (``policy.crash_retry``), and the heartbeat setting the
zombie automation relies on: pure rules."""

from datetime import UTC, datetime, timedelta

import yaml

from releasegate.policy.crash_retry import HEARTBEAT_ENV, HEARTBEAT_SECONDS, MAX_AGE, crash_verdict
from tests.conftest import ROOT

CRASHED = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def test_a_first_crash_is_retried_after_the_policys_delay():
    v = crash_verdict(1, retries=1, retry_delay_seconds=300, crashed_at=CRASHED, now=CRASHED + timedelta(minutes=1))
    assert v.action == "retry" and v.at == CRASHED + timedelta(seconds=300)
    assert "retry 1 of 1" in v.reason and "retry_delay_seconds 300" in v.reason


def test_a_crash_beyond_the_retries_is_left_crashed_and_says_why():
    v = crash_verdict(2, retries=1, retry_delay_seconds=300, crashed_at=CRASHED, now=CRASHED)
    assert v.action == "give_up" and v.at is None
    assert "crashed 2 time(s)" in v.reason and "allows 1 retry" in v.reason
    none = crash_verdict(1, retries=0, retry_delay_seconds=0, crashed_at=CRASHED, now=CRASHED)
    assert none.action == "give_up" and "allows 0 retries" in none.reason
    unset = crash_verdict(1, retries=None, retry_delay_seconds=None, crashed_at=CRASHED, now=CRASHED)
    assert unset.action == "give_up"


def test_an_old_crash_is_not_retried_behind_its_owners_back():
    v = crash_verdict(1, retries=2, retry_delay_seconds=0, crashed_at=CRASHED, now=CRASHED + MAX_AGE + timedelta(1))
    assert v.action == "too_old" and v.at is None and "Prefect UI" in v.reason


def test_a_retry_due_in_the_past_is_due_at_once():
    v = crash_verdict(1, retries=1, retry_delay_seconds=10, crashed_at=CRASHED, now=CRASHED + timedelta(hours=1))
    assert v.action == "retry" and v.at == CRASHED + timedelta(seconds=10)  # the worker takes it now


def test_the_zombie_automation_waits_four_heartbeats_and_closes_on_any_other_flow_run_event():
    doc = yaml.safe_load((ROOT / "deployments" / "automations.yaml").read_text())
    [zombie] = [a for a in doc["automations"] if a["name"] == "releasegate-crash-zombie-flow-runs"]
    trigger = zombie["trigger"]
    assert trigger["posture"] == "Proactive" and trigger["threshold"] == 1
    assert trigger["within"] == 4 * HEARTBEAT_SECONDS
    assert "prefect.flow-run.heartbeat" in trigger["after"] and trigger["expect"] == ["prefect.flow-run.*"]
    assert zombie["actions"] == [
        {"type": "change-flow-run-state", "state": "CRASHED", "message": zombie["actions"][0]["message"]}
    ]


def test_the_pool_template_gets_the_heartbeat_and_keeps_an_operators_value():
    from prefect.workers.process import ProcessWorker

    from releasegate.adapters.prefect_infra import with_heartbeats

    shipped = ProcessWorker.get_default_base_job_template()
    ours = with_heartbeats(shipped)
    assert ours["variables"]["properties"]["env"]["default"] == {HEARTBEAT_ENV: str(HEARTBEAT_SECONDS)}
    assert with_heartbeats(ours) == ours  # idempotent: infra up says "unchanged" the second time
    assert "default" not in shipped["variables"]["properties"]["env"]  # the input is not changed
    theirs = with_heartbeats(shipped)
    theirs["variables"]["properties"]["env"]["default"] = {HEARTBEAT_ENV: "45", "OTHER": "1"}
    assert with_heartbeats(theirs)["variables"]["properties"]["env"]["default"] == {HEARTBEAT_ENV: "45", "OTHER": "1"}

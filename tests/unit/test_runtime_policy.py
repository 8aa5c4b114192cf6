"""Runtime policy (activation block): the check, the deploy refusal, the late-run rule."""

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from typer.testing import CliRunner

from releasegate.cli import app
from releasegate.policy.runtime_policy import (
    LateRunMode,
    LateRunPolicy,
    check_deployments,
    late_run_verdict,
    load_prefect_yaml,
    policy_from_deployment,
)
from tests.conftest import ROOT

COMPLETE = {
    "name": "eod-scoring",
    "entrypoint": "flows/x.py:x",
    "concurrency_limit": {"limit": 1, "collision_strategy": "ENQUEUE"},
    "runtime_policy": {
        "retries": 2,
        "retry_delay_seconds": 60,
        "timeout_seconds": 3600,
        "late_run": {"mode": "skip", "skip_after_minutes": 90},
    },
}


def _write(tmp_path, deployments):
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "deployments": deployments}))
    return path


def test_repo_prefect_yaml_is_complete():
    ok, bad = check_deployments(load_prefect_yaml(ROOT / "prefect.yaml"))
    assert ok and not bad
    result = CliRunner().invoke(app, ["policy", "check", str(ROOT / "prefect.yaml")])
    assert result.exit_code == 0, result.output


def test_policy_is_built_from_both_keys():
    policy = policy_from_deployment(COMPLETE)
    assert (policy.retries, policy.retry_delay_seconds, policy.timeout_seconds, policy.concurrency_limit) == (
        2,
        60,
        3600,
        1,
    )
    assert policy.late_run.mode is LateRunMode.skip
    assert policy_from_deployment({**COMPLETE, "concurrency_limit": 3}).concurrency_limit == 3


def test_a_flow_that_pauses_declares_its_limit_in_runtime_policy_and_releasegate_holds_it():
    """Prefect 3.8 cancels a paused run whose deployment slot it revoked at the pause: the promotion (which
    waits for approvals) declares its concurrency_limit inside runtime_policy, held by releasegate; one of
    the two places is required, and both at once is refused."""
    own = {
        **COMPLETE,
        "concurrency_limit": None,
        "runtime_policy": {**COMPLETE["runtime_policy"], "concurrency_limit": 4},
    }
    policy = policy_from_deployment(own)
    assert (policy.concurrency_limit, policy.concurrency_by) == (4, "releasegate")
    assert policy_from_deployment(COMPLETE).concurrency_by == "prefect"
    both = {**own, "concurrency_limit": 2}
    ok, bad = check_deployments({"deployments": [both]})
    assert not ok and "concurrency_limit: declared twice" in str(bad[0])
    written = {**own, "runtime_policy": {**own["runtime_policy"], "concurrency_by": "prefect"}}
    assert policy_from_deployment(written).concurrency_by == "releasegate"  # derived, never taken as written
    shipped = load_prefect_yaml(ROOT / "prefect.yaml")
    [promotion] = [d for d in shipped["deployments"] if d["name"] == "promotion"]
    assert "concurrency_limit" not in promotion and policy_from_deployment(promotion).concurrency_by == "releasegate"


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ({"runtime_policy": None}, "no runtime_policy"),
        ({"concurrency_limit": None}, "no concurrency_limit"),
        ({"runtime_policy": {**COMPLETE["runtime_policy"], "retries": None} | {}}, "retries"),
        (
            {"runtime_policy": {k: v for k, v in COMPLETE["runtime_policy"].items() if k != "timeout_seconds"}},
            "runtime_policy.timeout_seconds missing",
        ),
        ({"runtime_policy": {**COMPLETE["runtime_policy"], "late_run": {"mode": "skip"}}}, "skip_after_minutes"),
        ({"runtime_policy": {**COMPLETE["runtime_policy"], "timeout_seconds": 0}}, "timeout_seconds"),
    ],
)
def test_incomplete_profiles_are_named(broken, problem):
    ok, bad = check_deployments({"deployments": [COMPLETE, {**COMPLETE, "name": "backfill", **broken}]})
    assert ok == ["eod-scoring"]
    assert [b.deployment for b in bad] == ["backfill"] and problem in str(bad[0])


def test_policy_check_cli_exits_1_naming_the_deployment(tmp_path):
    incomplete = {k: v for k, v in COMPLETE.items() if k != "runtime_policy"} | {"name": "backfill"}
    path = _write(tmp_path, [COMPLETE, incomplete])
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert "backfill" in result.output and "no runtime_policy" in result.output
    assert "ok      eod-scoring" in result.output


def test_deploy_refuses_to_activate_incomplete_deployment(tmp_path):
    incomplete = {k: v for k, v in COMPLETE.items() if k != "concurrency_limit"} | {"name": "backfill"}
    path = _write(tmp_path, [COMPLETE, incomplete])
    result = CliRunner().invoke(app, ["deploy", "--prefect-file", str(path), "--name", "backfill"])
    assert result.exit_code == 1
    assert "refused" in result.output and "backfill" in result.output and "no deployment was activated" in result.output
    unknown = CliRunner().invoke(app, ["deploy", "--prefect-file", str(path), "--name", "nope"])
    assert unknown.exit_code == 2 and "nope" in unknown.output


NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("policy", "late_by", "runs"),
    [
        (LateRunPolicy(mode="run_late"), timedelta(hours=5), True),
        (LateRunPolicy(mode="skip", skip_after_minutes=30), timedelta(minutes=30), True),
        (LateRunPolicy(mode="skip", skip_after_minutes=30), timedelta(minutes=31), False),
        (LateRunPolicy(mode="skip", skip_after_minutes=30), -timedelta(minutes=5), True),
    ],
)
def test_late_run_verdict(policy, late_by, runs):
    verdict = late_run_verdict(policy, NOW - late_by, NOW)
    assert verdict.run is runs
    if not runs:
        assert verdict.reason.startswith("LATE_RUN_SKIPPED") and verdict.lateness == late_by


def test_unscheduled_runs_are_never_late():
    assert late_run_verdict(LateRunPolicy(mode="skip", skip_after_minutes=1), None, NOW).run

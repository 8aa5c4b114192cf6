"""Configuration accepted when wrong: duplicate YAML keys, unknown fields, bad schedules in prefect.yaml,
stale approvals. Each refusal names the field and the rule, exits non-zero and shows no traceback."""

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from typer.testing import CliRunner

from releasegate.adapters.config import ConfigError, from_file, load_routes
from releasegate.cli import app
from releasegate.policy.manual_runs import MAX_APPROVAL_AGE, decide_manual_run
from releasegate.yamlio import DuplicateKeyError, load_yaml
from tests.conftest import ROOT

SECOND_WINDOWS = """
windows:
  - name: sunday-maintenance
    kind: maintenance
    timezone: Europe/Zurich
    recurrence: weekly
    weekdays: [6]
    start_time: "02:00:00"
    duration_minutes: 120
"""


_BOX = str.maketrans("", "", "│╭╮╰╯─")


def _refused_cleanly(result, code: int | None = None) -> str:
    """Non-zero exit through typer (SystemExit), not an escaping exception; no traceback in the output.

    Returns the output as one line without rich's panel borders (rich wraps long lines)."""
    out = result.output
    assert result.exit_code != 0, out
    if code is not None:
        assert result.exit_code == code, out
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in out
    return " ".join(out.translate(_BOX).split())


# ------------------------------------------------------------------ 1. duplicate YAML keys
def test_duplicate_windows_key_in_capacity_policy_is_refused(tmp_path, monkeypatch):
    """A second ``windows:`` used to replace the first list silently, dropping the year-end freeze."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "capacity_policy.yaml"
    path.write_text((ROOT / "blocks" / "capacity_policy.yaml").read_text() + SECOND_WINDOWS)
    out = _refused_cleanly(CliRunner().invoke(app, ["infra", "up", "--policy-file", path.name]), code=2)
    assert "invalid configuration capacity_policy.yaml" in out and "duplicate key 'windows'" in out
    first, second = (i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith("windows:"))
    assert f"line {second}: duplicate key 'windows' (first given on line {first})" in out
    with pytest.raises(ConfigError) as ei:
        from_file("capacity-policy", path)
    assert ei.value.field == "windows"
    # event routes use the same strict loader
    routes = tmp_path / "event_routes.yaml"
    routes.write_text("routes: []\nroutes:\n  - {event_type: data.partition.arrived@v1, deployment: backfill}\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RELEASEGATE_EVENT_ROUTES", str(routes))
        with pytest.raises(ConfigError, match="duplicate key 'routes'"):
            load_routes()
    # anchors, aliases and merge keys (an explicit key overriding a merged one) still load
    assert load_yaml("a: &a {k: 1, j: 2}\nb: {<<: *a, k: 3}\n") == {"a": {"k": 1, "j": 2}, "b": {"k": 3, "j": 2}}
    with pytest.raises(DuplicateKeyError):
        load_yaml("a: {k: 1, k: 2}\n")


# ------------------------------------------------------------------ 2. unknown fields in config models
@pytest.mark.parametrize(
    ("name", "text", "field"),
    [
        ("approvers", "pm: [pm-anna]\nrisks: [risk-carla]\n", "risks"),
        ("monitoring-thresholds", "max_psi: 0.2\nmax_psii: 0.1\n", "max_psii"),
        ("retrain-policy", "psi_urgent: 0.3\nrefit_day: 30\n", "refit_day"),
        ("gate-policy", "primary_metric: roc_auc\nmax_pssi: 0.2\n", "max_pssi"),
    ],
)
def test_unknown_config_field_is_refused_naming_file_field_and_rule(tmp_path, name, text, field):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as ei:
        from_file(name, path)
    assert ei.value.field == field and ei.value.path == str(path)
    assert f"{field}: unknown field" in str(ei.value) and "check the spelling" in str(ei.value)


def test_config_error_reaches_the_cli_user_as_a_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "capacity.yaml"
    doc = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text())
    doc["sla_alert_minute"] = 5  # typo of sla_alert_minutes
    doc["queues"][0]["priority"] = 0
    path.write_text(yaml.safe_dump(doc))
    out = _refused_cleanly(CliRunner().invoke(app, ["infra", "up", "--policy-file", path.name]), code=2)
    assert "invalid configuration capacity.yaml: 2 problems" in out
    assert "sla_alert_minute: unknown field" in out and "queues.0.priority: Input should be greater than" in out
    assert "Fix it and run the command again" in out


def test_shipped_blocks_still_load():
    for name in ("capacity-policy", "gate-policy", "approvers", "retrain-policy", "monitoring-thresholds"):
        from_file(name, ROOT / "blocks" / f"{name.replace('-', '_')}.yaml")
    assert load_routes()


# ------------------------------------------------------------------ 3. releasegate policy check
COMPLETE = {
    "name": "eod-scoring",
    "entrypoint": "flows/x.py:x",
    "concurrency_limit": {"limit": 1, "collision_strategy": "ENQUEUE"},
    "runtime_policy": {"retries": 0, "retry_delay_seconds": 0, "timeout_seconds": 60, "late_run": {"mode": "run_late"}},
}


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (
            {"cron": "30 18 * * 1-5", "timezone": "Europe/Zurichh"},
            "schedules[0].timezone: 'Europe/Zurichh' is not an IANA timezone",
        ),
        ({"cron": "61 18 * * *", "timezone": "Europe/Zurich"}, "schedules[0].cron: '61 18 * * *' is not a valid cron"),
        ({"interval": 0}, "schedules[0].interval: must be positive"),
        ({"interval": "soon"}, "schedules[0].interval: must be a positive number of seconds"),
    ],
)
def test_policy_check_refuses_invalid_schedules(tmp_path, schedule, words):
    path = tmp_path / "prefect.yaml"
    good = {**COMPLETE, "name": "backfill", "schedules": [{"cron": "@daily", "timezone": "UTC"}, {"interval": 60}]}
    path.write_text(yaml.safe_dump({"deployments": [{**COMPLETE, "schedules": [schedule]}, good]}))
    out = _refused_cleanly(CliRunner().invoke(app, ["policy", "check", str(path)]), code=1)
    assert f"eod-scoring: {words}" in out and "ok backfill" in out


def test_policy_check_reports_a_deployment_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump({"deployments": [COMPLETE, "just-a-string"]}))
    out = _refused_cleanly(CliRunner().invoke(app, ["policy", "check", str(path)]), code=1)
    assert "deployments[1]: must be a mapping" in out and "'just-a-string'" in out and "ok eod-scoring" in out


def test_policy_check_refuses_a_queue_that_disagrees_with_the_capacity_policy(tmp_path, monkeypatch):
    import shutil

    monkeypatch.delenv("RELEASEGATE_CAPACITY_POLICY", raising=False)
    (tmp_path / "blocks").mkdir()
    shutil.copy(ROOT / "blocks" / "capacity_policy.yaml", tmp_path / "blocks" / "capacity_policy.yaml")
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    [backfill] = [d for d in doc["deployments"] if d["name"] == "backfill"]
    backfill["work_pool"]["work_queue_name"] = "critical"  # the capacity policy ranks it as bulk
    (tmp_path / "prefect.yaml").write_text(yaml.safe_dump(doc))
    out = _refused_cleanly(CliRunner().invoke(app, ["policy", "check", str(tmp_path / "prefect.yaml")]), code=1)
    assert "backfill: work_pool.work_queue_name: 'critical' disagrees with the capacity policy" in out
    assert "deployments.backfill.queue: 'bulk'" in out and "ok eod-scoring" in out


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: a\ndeployments: []\ndeployments: []\n", "line 3: duplicate key 'deployments' (first given on line 2)"),
        ("deployments:\n  - name: x\n    name: y\n", "line 3: duplicate key 'name' (first given on line 2)"),
        ("deployments: [\n", "not valid YAML"),
        ("- not a mapping\n", "not a prefect.yaml mapping"),
    ],
)
def test_policy_check_exits_2_on_unreadable_prefect_yaml(tmp_path, text, words):
    path = tmp_path / "prefect.yaml"
    path.write_text(text)
    out = _refused_cleanly(CliRunner().invoke(app, ["policy", "check", str(path)]), code=2)
    assert words in out and "run `releasegate policy check` again" in out


# ------------------------------------------------------------------ 4. manual runs: approval age
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
PROD = {"requested_by": "alice", "reason_code": "hotfix", "ticket_ref": "CHG-1", "target_environment": "prod"}


@pytest.mark.parametrize(
    ("approved_at", "refusal"),
    [
        (NOW - MAX_APPROVAL_AGE, None),
        (NOW + timedelta(minutes=4), None),
        (NOW - MAX_APPROVAL_AGE - timedelta(seconds=1), "approved_at: approval is older than the maximum age"),
        (datetime(1999, 1, 1, tzinfo=UTC), "approved_at: approval is older than the maximum age of 7 days"),
        (NOW + timedelta(minutes=6), "approved_at"),
    ],
)
def test_manual_run_approval_must_be_recent(approved_at, refusal):
    verdict = decide_manual_run({**PROD, "approved_at": approved_at}, "flow_run:t", "test", now=NOW)
    if refusal is None:
        assert verdict.accepted, verdict.decision.decision_rationale
    else:
        assert not verdict.accepted and refusal in verdict.decision.decision_rationale
        assert verdict.decision.decision_outcome.value == "reject"
        assert verdict.decision.details["refusal"].startswith("approved_at:")

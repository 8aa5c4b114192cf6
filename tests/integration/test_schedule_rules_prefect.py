"""The schedule rules on the Prefect harness: a team's cron flow across the October DST change (moved
to the shifted time, the duplicate dropped) and five late runs under ``catch_up: latest_only`` (one
runs, four skipped), each drop or move a ``schedule`` decision."""

import textwrap
from datetime import UTC, datetime

import pytest
from prefect import get_client
from prefect.client.schemas.objects import StateType
from prefect.exceptions import Pause
from prefect.flow_engine import run_flow
from prefect.flows import load_flow_from_entrypoint
from prefect.states import Scheduled

from releasegate import bootstrap
from releasegate.bootstrap import use_clock
from releasegate.clock import FixedClock

pytestmark = pytest.mark.prefect

PREFECT_YAML = """
name: team
deployments:
  - name: nightly-{tag}
    entrypoint: flows/nightly.py:nightly
    work_pool: {{name: team-pool, work_queue_name: default}}
    concurrency_limit: 1
    schedules:
      - cron: "30 2 * * *"
        timezone: Europe/Zurich
    runtime_policy:
      retries: 0
      retry_delay_seconds: 0
      timeout_seconds: 600
      late_run: {{mode: run_late}}
      dst: shifted
      catch_up: {{mode: latest_only}}
"""
FLOW = """
import releasegate


@releasegate.governed("nightly-{tag}")
def nightly() -> str:
    return "ran"
"""


def team_flow(tmp_path, tag):
    project = tmp_path / "team"
    (project / "flows").mkdir(parents=True)
    (project / "prefect.yaml").write_text(PREFECT_YAML.format(tag=tag))
    (project / "flows" / "nightly.py").write_text(textwrap.dedent(FLOW.format(tag=tag)))
    flow = load_flow_from_entrypoint(f"{project}/flows/nightly.py:nightly")
    deployment_id = flow.to_deployment(name=f"nightly-{tag}").apply()
    return flow, deployment_id


def schedule_run(deployment_id, at: datetime, n: int):
    """A run as Prefect's scheduler makes one: Scheduled at the cron time, key ``scheduled <deployment> ...``."""
    with get_client(sync_client=True) as c:
        return c.create_flow_run_from_deployment(
            deployment_id,
            state=Scheduled(scheduled_time=at),
            idempotency_key=f"scheduled {deployment_id} test {n} {at.isoformat()}",
        )


def execute(flow, run_id):
    with get_client(sync_client=True) as c:
        return run_flow(flow, flow_run=c.read_flow_run(run_id), return_type="state")


def read(run_id):
    with get_client(sync_client=True) as c:
        return c.read_flow_run(run_id)


def schedule_records():
    return [r for r in bootstrap.decision_log().query(kind="schedule")]


def test_dst_shifted_moves_the_first_pass_and_drops_the_second(tmp_path, rg_home, prefect_harness):
    flow, dep = team_flow(tmp_path, "dst")
    first_pass = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 summer time
    second_pass = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 again, winter time
    a = schedule_run(dep, first_pass, 1)
    b = schedule_run(dep, second_pass, 2)  # what Prefect before 2.x fixes made of the repeated hour
    with use_clock(FixedClock(first_pass)):
        with pytest.raises(Pause):
            execute(flow, a.id)
    moved = read(a.id)
    assert moved.state_type == StateType.SCHEDULED and moved.state.message == "DST_MOVED"
    assert moved.state.state_details.scheduled_time == second_pass
    with use_clock(FixedClock(second_pass)):
        assert execute(flow, a.id).is_completed()  # it came back at the shifted time: it runs
        dup = execute(flow, b.id)
    assert dup.is_cancelled() and "DUPLICATE_OCCURRENCE" in dup.message
    recs = schedule_records()
    assert [(r.details["rule"], r.details["action"]) for r in recs] == [
        ("dst", "move"),
        ("duplicate_occurrence", "skip"),
    ]
    assert recs[0].details["moved_to"] == second_pass.isoformat()
    assert recs[1].details["first_run"] == str(a.id)


def test_five_late_runs_under_latest_only_run_once_and_record_four_skips(tmp_path, rg_home, prefect_harness):
    flow, dep = team_flow(tmp_path, "catchup")
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    # five nights the worker was down (cron times of 02:30 Zurich: 01:30 UTC in winter)
    nights = [datetime(2026, 11, 25 + i, 1, 30, tzinfo=UTC) for i in range(5)]
    runs = [schedule_run(dep, t, i) for i, t in enumerate(nights)]
    with use_clock(FixedClock(now)):
        states = [execute(flow, r.id) for r in runs]  # the worker comes back and takes them, oldest first
    assert [s.type for s in states] == [StateType.CANCELLED] * 4 + [StateType.COMPLETED]
    assert all("CATCH_UP_SKIPPED" in s.message for s in states[:4])
    recs = schedule_records()
    assert len(recs) == 4 and {r.details["rule"] for r in recs} == {"catch_up"}
    assert sorted(r.details["later_due"] for r in recs) == [1, 2, 3, 4]
    assert {r.subject for r in recs} == {f"flow_run:{r.id}" for r in runs[:4]}
    assert bootstrap.decision_log().verify().ok

"""The weekly operational-risk review on a real Prefect server: the week's runs read from Prefect (started or
not), the review recorded once with its P2 incident, the artifact in Prefect, and `releasegate report
--week`. A work pool of its own, so other modules' runs in the shared server do not count."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from prefect import flow, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists
from prefect.states import Completed, Running, Scheduled
from typer.testing import CliRunner

from releasegate import bootstrap
from releasegate.cli import app
from releasegate.decisions import DecisionKind
from releasegate.policy.operational_review import last_complete_week
from tests.conftest import ROOT

pytestmark = pytest.mark.prefect
POOL = "review-pool"


@flow(name="nightly-report")
def nightly_report() -> None:
    """A deployment the review counts; its runs are never executed here, only given states."""


@pytest.fixture
def week(prefect_harness, rg_home, tmp_path, monkeypatch):
    """Last week's runs of one deployment in POOL: 40 due, 36 started (90 %: below 98 %), and one due the
    week before. The capacity policy names POOL."""
    policy = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text()) | {"pool_name": POOL}
    path = tmp_path / "capacity.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("RELEASEGATE_CAPACITY_POLICY", str(path))
    monday, _ = last_complete_week(datetime.now(UTC))
    with get_client(sync_client=True) as c:
        try:
            c.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
        except ObjectAlreadyExists:  # made by an earlier test of this module
            pass
    dep = nightly_report.to_deployment(name="nightly-report", work_pool_name=POOL).apply()
    started, late = [], []
    with get_client(sync_client=True) as c:
        for i in range(41):
            due = monday + timedelta(hours=4 * i) if i < 40 else monday - timedelta(hours=1)
            run = c.create_flow_run_from_deployment(dep, state=Scheduled(scheduled_time=due))
            if i < 36:
                c.set_flow_run_state(run.id, Running(), force=True)
                c.set_flow_run_state(run.id, Completed(), force=True)
                started.append(str(run.id))
            elif i < 40:
                late.append(str(run.id))
    return monday, started, late


def test_the_sweepers_review_reads_prefect_and_opens_one_p2_incident(week):
    from releasegate.adapters.prefect_events import emit_event
    from releasegate.adapters.prefect_review import publish_markdown, week_facts_reader
    from releasegate.services.operational_review import record_weekly_review

    monday, started, late = week
    read = week_facts_reader(POOL, bootstrap.scheduling_store())
    runs, deferrals = read(monday, monday + timedelta(days=7))
    assert sorted(r.flow_run_id for r in runs if r.started) == sorted(started)
    assert sorted(r.flow_run_id for r in runs if not r.started) == sorted(late)  # the week before is not in it
    assert {r.deployment for r in runs} == {"nightly-report"} and deferrals == []

    now = monday + timedelta(days=7, minutes=5)
    out = record_weekly_review(bootstrap.decision_log(), read, publish_markdown, emit_event, POOL, 30, now)
    assert out is not None and out.review.status == "incident"
    assert (out.review.scheduled, out.review.started) == (40, 36)
    assert out.incident is not None and sorted(out.incident.details["not_started"]) == sorted(late)
    assert out.incident.details["event_id"]  # the incident's event went to Prefect, for the on-call automation
    assert record_weekly_review(bootstrap.decision_log(), read, publish_markdown, emit_event, POOL, 30, now) is None
    assert len(bootstrap.decision_log().query(kind=DecisionKind.operational_report)) == 1
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    mine = ArtifactFilter(key=ArtifactFilterKey(any_=["releasegate-operations-review-pool"]))
    with get_client(sync_client=True) as c:  # by key: the whole suite makes far more artifacts than a page
        [artifact] = [a for a in c.read_artifacts(artifact_filter=mine) if f"{monday:%Y-%m-%d}" in str(a.data)][:1]
    assert "Scheduled runs started: 90.0 %" in str(artifact.data)


def test_report_week_prints_the_review(week):
    monday, started, late = week
    res = CliRunner().invoke(app, ["report", "--week", f"{monday + timedelta(days=2):%Y-%m-%d}", "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.stdout)
    assert body["week_start"].startswith(f"{monday:%Y-%m-%d}") and body["status"] == "incident"
    assert body["scheduled"] >= 40 and body["started"] >= 36  # the fixture ran once per test
    res = CliRunner().invoke(app, ["report", "--week", f"{monday:%Y-%m-%d}"])
    assert res.exit_code == 0, res.output
    assert "nightly-report" in res.output and "scheduled runs started" in res.output
    assert bootstrap.decision_log().query(kind=DecisionKind.operational_report) == []  # a view, not a record

"""`releasegate run`, `watch` and `awaiting` against the Prefect harness: a run started from the CLI and
followed to its end by a worker, refusals that name the field, and a paused promotion's approve line."""

from datetime import UTC, datetime, timedelta

import pytest
from prefect import get_client
from prefect.states import Cancelled, Paused, Scheduled
from typer.testing import CliRunner

from releasegate.cli import app
from tests.conftest import InProcessWorker, apply_deployments, cancel_unfinished_pool_runs

pytestmark = pytest.mark.prefect
runner = CliRunner()


@pytest.fixture(scope="module")
def deployed(prefect_harness):
    from flows.governance_run import governance_run
    from flows.promotion import promotion

    return apply_deployments({"governance-run": (governance_run, "default"), "promotion": (promotion, "critical")})


@pytest.fixture
def cli(deployed, rg_home, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    cancel_unfinished_pool_runs()
    yield lambda *args: runner.invoke(app, list(args))
    cancel_unfinished_pool_runs()


def test_run_starts_a_deployment_and_watch_follows_it_to_completed(cli):
    from flows.governance_run import governance_run

    with InProcessWorker({"governance-run": governance_run}):
        res = cli("run", "governance-run", "-p", "requested_by=alice", "-p", "reason_code=other", "--watch")
    assert res.exit_code == 0, res.output
    assert "started governance-run/governance-run run" in res.output
    assert '"requested_by": "alice"' in res.output and "/runs/flow-run/" in res.output
    assert "Completed" in res.output.rstrip().splitlines()[-2]
    assert res.output.rstrip().splitlines()[-1] == "  artifact governance-run: Governance run"


def test_watch_ends_with_the_verdict_rows_of_the_runs_artifacts(cli, deployed):
    """EOD's artifact eod-<model> is a field/value table; watch prints its action and reason code."""
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.states import Completed

    table = (
        "# EOD\n\n| field | value |\n|---|---|\n| rows | 5 |\n| action | rollback |\n| reason_code | DRIFT_URGENT |\n"
    )
    with get_client(sync_client=True) as c:
        fr = c.create_flow_run_from_deployment(
            deployed["promotion"], parameters={"model_name": "m", "candidate_version": "1"}
        )
        c.create_artifact(
            ArtifactCreate(key="eod-m", type="markdown", data=table, description="EOD", flow_run_id=fr.id)
        )
        c.set_flow_run_state(fr.id, Completed(), force=True)
    res = cli("watch", str(fr.id))
    assert res.exit_code == 0, res.output
    assert "  artifact eod-m: EOD - action rollback, reason_code DRIFT_URGENT" in res.output


def _cli_runs(deployment_id) -> int:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as c:
        runs = c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    return sum("cli" in (r.tags or []) for r in runs)


def test_run_refusals_name_the_field_and_create_nothing(cli, deployed):
    before = _cli_runs(deployed["governance-run"])
    res = cli("run", "no-such-deployment")
    assert res.exit_code == 1
    assert "refused: deployment: 'no-such-deployment/no-such-deployment' is not deployed" in res.output
    res = cli("run", "governance-run", "-p", "requested_by")
    assert res.exit_code == 2 and "refused: --param: 'requested_by' is not key=value" in res.output
    res = cli("run", "governance-run", "-p", "reason_code=other")  # requested_by is required by the flow
    assert res.exit_code == 1 and "refused: --param:" in res.output, res.output
    assert (
        "'requested_by' is a required property" in res.output and "requested_by (required), reason_code" in res.output
    )
    res = cli("run", "governance-run", "-p", "requested_by=alice", "-p", "date=2026-12-03")
    assert res.exit_code == 1 and "refused: --param: 'date' is not a parameter of governance-run" in res.output
    assert _cli_runs(deployed["governance-run"]) == before


def test_run_reads_each_value_as_its_parameters_type(cli, deployed):
    """candidate_version is a string parameter: `-p candidate_version=3` is "3", not the number 3 Prefect
    would refuse; a number parameter gets its number."""
    res = cli("run", "promotion", "--model", "credit", "-p", "candidate_version=3", "-p", "approval_timeout_minutes=5")
    assert res.exit_code == 0, res.output
    run_id = res.output.split("run ", 1)[1].split(": ", 1)[1].split()[0]
    with get_client(sync_client=True) as c:
        params = c.read_flow_run(run_id).parameters
    assert params == {"model_name": "credit", "candidate_version": "3", "approval_timeout_minutes": 5}


def test_approve_on_a_run_that_does_not_exist_is_refused_without_a_traceback(cli):
    res = cli("approve", "00000000-0000-0000-0000-000000000000", "--role", "pm", "--by", "pm-anna", "--ref", "X")
    assert res.exit_code == 2 and "refused: run: no flow run 00000000-0000-0000-0000-000000000000" in res.output
    assert "Traceback" not in res.output
    res = cli("approve", "nope", "--role", "pm", "--by", "pm-anna", "--ref", "X")
    assert res.exit_code == 2 and "refused: run: 'nope' is not a flow run id" in res.output


def test_a_paused_promotion_is_listed_with_the_role_it_waits_for_and_the_line_to_approve(cli, deployed):
    res = cli("awaiting")
    assert res.exit_code == 0 and "no promotion waits for an approval" in res.output
    with get_client(sync_client=True) as c:
        fr = c.create_flow_run_from_deployment(
            deployed["promotion"], parameters={"model_name": "credit", "candidate_version": "3", "requested_by": "dana"}
        )
        # the state flows/promotion.py's pause_flow_run(wait_for_input=..., key="pm-approval-<hex>") leaves
        c.set_flow_run_state(fr.id, Paused(timeout_seconds=600, pause_key="pm-approval-0123abcd"), force=True)

    res = cli("awaiting")
    assert res.exit_code == 0, res.output
    assert "credit v3  awaiting PM since" in res.output and "(requested by dana)" in res.output
    assert f"releasegate approve {fr.id} --role pm --by YOU --ref TICKET" in res.output
    with get_client(sync_client=True) as c:  # a run started without requested_by: the flow's default
        bare = c.create_flow_run_from_deployment(
            deployed["promotion"], parameters={"model_name": "credit", "candidate_version": "4"}
        )
        c.set_flow_run_state(bare.id, Paused(timeout_seconds=600, pause_key="risk-approval-99"), force=True)
    res = cli("awaiting")
    assert "credit v4  awaiting RISK since" in res.output and "(requested by registry-event)" in res.output
    with get_client(sync_client=True) as c:
        c.set_flow_run_state(bare.id, Cancelled(), force=True)

    res = cli("watch", str(fr.id), "--timeout", "1")
    assert res.exit_code == 3, res.output  # still paused when the watch gave up
    assert "Paused (awaiting PM approval)" in res.output and f"releasegate approve {fr.id} --role pm" in res.output

    with get_client(sync_client=True) as c:  # what the capacity gateway leaves on a run it defers
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=20)
        c.set_flow_run_state(
            fr.id, Scheduled(name="Deferred", scheduled_time=at, message="PRIORITY_CONFLICT"), force=True
        )
    res = cli("watch", str(fr.id), "--timeout", "1")
    assert res.exit_code == 3 and f"Deferred (PRIORITY_CONFLICT) until {at:%Y-%m-%d %H:%M:%S} UTC" in res.output

    with get_client(sync_client=True) as c:
        c.set_flow_run_state(fr.id, Cancelled(), force=True)
    res = cli("watch", str(fr.id))
    assert res.exit_code == 1 and "Cancelled" in res.output
    assert cli("awaiting", "--json").output.strip() == "[]"


def test_watch_refuses_a_run_id_that_is_not_one(cli):
    res = cli("watch", "not-a-uuid")
    assert res.exit_code == 2 and "refused: run: 'not-a-uuid' is not a flow run id" in res.output


def test_run_without_a_prefect_server_says_how_to_start_one(cli):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        res = cli("run", "eod-scoring", "--model", "credit")
        awaiting = cli("awaiting")
    for r in (res, awaiting):
        assert r.exit_code == 2, r.output
        assert "refused: PREFECT_API_URL: no Prefect server is configured" in r.output and "releasegate up" in r.output

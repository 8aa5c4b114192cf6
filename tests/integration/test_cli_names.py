"""Small CLI items on the Prefect harness: `run` suggests the deployment meant and checks `--model`
against the manifest before any run exists; `artifact show` renders an artifact; `decisions --wide` is
never cut."""

import pytest
from prefect import get_client
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter
from typer.testing import CliRunner

from releasegate import bootstrap
from releasegate.cli import app
from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision
from tests.conftest import apply_deployments, cancel_unfinished_pool_runs, govern

pytestmark = pytest.mark.prefect
runner = CliRunner()


@pytest.fixture(scope="module")
def deployed(prefect_harness):
    from flows.eod_scoring import eod_scoring

    return apply_deployments({"eod-scoring": (eod_scoring, "critical")})


@pytest.fixture
def cli(deployed, rg_home, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    cancel_unfinished_pool_runs()
    yield lambda *args: runner.invoke(app, list(args))
    cancel_unfinished_pool_runs()


def eod_runs() -> int:
    with get_client(sync_client=True) as c:
        return len(
            c.read_flow_runs(
                flow_run_filter=FlowRunFilter(),
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["eod-scoring"])),
            )
        )


def test_run_of_a_misspelt_deployment_suggests_the_deployed_one(cli):
    res = cli("run", "eod-scorin", "--model", "credit")
    assert res.exit_code == 1
    said = " ".join(res.output.split())
    assert "'eod-scorin/eod-scorin' is not deployed" in said and "(did you mean 'eod-scoring'?)" in said


def test_run_with_a_model_the_manifest_does_not_name_creates_no_run(cli, tmp_path, monkeypatch):
    govern(monkeypatch, tmp_path, "breast_cancer", "credit")
    before = eod_runs()
    res = cli("run", "eod-scoring", "--model", "breast_cancr")
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())
    assert "refused: --model: 'breast_cancr' is not in the model manifest (did you mean 'breast_cancer'?)" in said
    assert "no run was created" in said
    assert eod_runs() == before  # checked before any Prefect run exists


def test_artifact_show_renders_markdown_and_tables_by_key_or_id(cli):
    from prefect import flow

    @flow(name="artifact-maker")
    def maker():
        md = create_markdown_artifact(
            markdown="# Gate report\n\n| field | value |\n|---|---|\n| outcome | HOLD |\n",
            key="gate-report-artmodel",
            description="gate report of artmodel v3",
        )
        tb = create_table_artifact(table=[{"gate": "kpi", "passed": True}], key="gates-artmodel")
        return str(md), str(tb)

    md_id, _ = maker()
    res = cli("artifact", "show", "gate-report-artmodel")
    assert res.exit_code == 0, res.output
    assert "gate report of artmodel v3" in res.output and "Gate report" in res.output
    assert "# Gate report" not in res.output and "HOLD" in res.output  # rendered, not the markdown source
    by_id = cli("artifact", "show", f"artifact:{md_id}")  # as the approval form links it
    assert by_id.exit_code == 0 and "Gate report" in by_id.output
    raw = cli("artifact", "show", md_id, "--raw")
    assert raw.output.startswith("# Gate report")
    table = cli("artifact", "show", "gates-artmodel")
    assert table.exit_code == 0 and "kpi" in table.output and "True" in table.output
    missing = cli("artifact", "show", "gate-report-artmodl")
    assert missing.exit_code == 2
    assert "(did you mean 'gate-report-artmodel'?)" in " ".join(missing.output.split())


def test_decisions_wide_is_never_cut_when_piped(cli, monkeypatch):
    long = "a rationale long enough to be folded in an 80-column table: " + "x" * 150 + " END"
    bootstrap.decision_log().append(
        NewDecision(
            decision_kind=DecisionKind.schedule,
            decision_outcome=DecisionOutcome.accept,
            decision_rationale=long,
            subject="model:widemodel",
            actor="test",
            details={"deployment": "eod-scoring/widemodel", "rule": "catch_up", "action": "run"},
        )
    )
    monkeypatch.setenv("COLUMNS", "80")
    folded = cli("decisions", "--subject", "model:widemodel")
    assert long not in folded.output  # the table fits 80 columns
    wide = cli("decisions", "--subject", "model:widemodel", "--wide")
    assert wide.exit_code == 0
    [line] = wide.output.splitlines()
    assert line.split("\t")[1:4] == ["schedule", "accept", "model:widemodel"] and line.endswith(long)

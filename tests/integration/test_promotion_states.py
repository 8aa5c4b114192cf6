"""A hold is visible as a hold (issue 29, item 7): a promotion the gates stop ends in a state named
``Held`` or ``Rejected``, ``releasegate run --watch`` / ``watch`` exit 4 / 5 for them, and the dossier and
the gate report are artifacts of the promotion run itself, linked from the approval form.

Started from the CLI and run by an in-process worker on the Prefect harness; models really trained
(the credit example's generated data) and registered in a real MLflow registry.
"""

import json
import re
import time

import pytest
from credit_example.training import log_and_register, train
from prefect import get_client
from prefect.client.schemas.objects import StateType
from typer.testing import CliRunner

from releasegate.adapters import mlflow_registry as registry
from releasegate.cli import app
from tests.conftest import InProcessWorker, apply_deployments, cancel_unfinished_pool_runs, fast_capacity_policy

pytestmark = pytest.mark.prefect
MODEL, STAGING, PROD = "credit", "staging.credit", "prod.credit"
WEAKER_BY_3PCT, WEAKER_BY_1PCT = ("collateral_ratio",), ("exposure_musd",)  # as in test_promotion.py
runner = CliRunner()


@pytest.fixture(scope="module")
def deployed(prefect_harness):
    from flows.promotion import promotion

    return apply_deployments({"promotion": (promotion, "critical")})


@pytest.fixture
def home(rg_home, tmp_path, monkeypatch, deployed, live_clock):
    fast_capacity_policy(tmp_path, monkeypatch)
    monkeypatch.setenv("RELEASEGATE_APPROVAL_POLL_SECONDS", "1")
    monkeypatch.setenv("COLUMNS", "250")
    cancel_unfinished_pool_runs()
    yield rg_home
    cancel_unfinished_pool_runs()


def register(without: tuple[str, ...] = ()) -> str:
    return log_and_register(train(seed=11, without=without), MODEL, "staging")


def install_champion(version: str) -> None:
    registry.set_alias(PROD, "champion", registry.copy_to(STAGING, version, PROD))


def start_promotion(version: str, *extra: str):
    """``releasegate run promotion ...``: the CLI's output and the run id it printed."""
    res = runner.invoke(app, ["run", "promotion", "--model", MODEL, "-p", f"candidate_version={version}", *extra])
    run_id = re.search(r"run '[^']+': ([0-9a-f-]{36})", res.output)
    assert run_id, res.output
    return res, run_id.group(1)


def run_promotion(version: str, *extra: str):
    from flows.promotion import promotion

    with InProcessWorker({"promotion": promotion}):
        return start_promotion(version, *extra)


def artifacts_of(flow_run_id: str) -> dict[str, str]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as c:
        mine = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        return {a.key: a.data for a in c.read_artifacts(artifact_filter=mine)}


def final_state(run_id: str):
    with get_client(sync_client=True) as c:
        return c.read_flow_run(run_id).state


def test_a_held_promotion_ends_held_and_watch_says_so_with_exit_4(home):
    install_champion(register(WEAKER_BY_1PCT))
    res, run_id = run_promotion(register(), "--watch", "--timeout", "900")
    assert res.exit_code == 4, res.output
    state = final_state(run_id)
    assert (state.type, state.name) == (StateType.COMPLETED, "Held")
    assert state.message.startswith("HOLD: kpi_delta:") and "(decision " in state.message
    last = [ln for ln in res.output.splitlines() if ln[:2].isdigit()][-1]
    assert "Held: HOLD: kpi_delta:" in last, res.output
    # the reports are the promotion run's own artifacts, and watch lists them
    arts = artifacts_of(run_id)
    assert "kpi_delta" in arts["gate-report-credit"] and "# Dossier: credit" in arts["dossier-credit"]
    assert "artifact gate-report-credit: Promotion gate report" in res.output
    assert registry.aliases(PROD) == {"champion": "1"}


def test_a_rejected_promotion_ends_rejected_and_watch_exits_5(home):
    install_champion(register())
    res, run_id = run_promotion(register(WEAKER_BY_3PCT), "--watch", "--timeout", "900")
    assert res.exit_code == 5, res.output
    state = final_state(run_id)
    assert (state.type, state.name) == (StateType.COMPLETED, "Rejected")
    assert state.message.startswith("REJECT: ") and "Rejected: REJECT:" in res.output
    assert set(artifacts_of(run_id)) == {"gate-report-credit", "dossier-credit"}


def test_the_approval_form_links_the_runs_own_gate_report_and_dossier(home):
    install_champion(register(WEAKER_BY_3PCT))
    from prefect.input.run_input import keyset_from_paused_state

    from flows.promotion import promotion

    res, run_id = start_promotion(register(), "-p", "approval_timeout_minutes=1")
    assert res.exit_code == 0, res.output
    deadline, description = time.monotonic() + 600, None
    with InProcessWorker({"promotion": promotion}):
        while description is None and time.monotonic() < deadline:
            with get_client(sync_client=True) as c:
                state = c.read_flow_run(run_id).state
                if state.is_paused() and state.state_details.pause_key:
                    key = keyset_from_paused_state(state)["description"]  # where the form's text is kept
                    description = json.loads(c.read_flow_run_input(run_id, key))
            time.sleep(0.5)
        assert description is not None, "the promotion never paused for PM"
        assert {"gate-report-credit", "dossier-credit"} <= set(artifacts_of(run_id))
        assert f"/runs/flow-run/{run_id}?tab=Artifacts" in description
        assert "`gate-report-credit` and `dossier-credit`" in description
        cancel_unfinished_pool_runs()

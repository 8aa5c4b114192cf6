"""``releasegate.governed`` on a team's own flow, in a project folder of its own (its prefect.yaml, its
module with ``from __future__ import annotations`` and a ``date`` parameter), on the Prefect harness."""

import textwrap

import pytest
from prefect.flows import load_flow_from_entrypoint

from tests.conftest import fast_capacity_policy

pytestmark = pytest.mark.prefect

PREFECT_YAML = """
name: team
deployments:
  - name: my-scoring
    entrypoint: flows/my_scoring.py:my_scoring
    work_pool: {name: releasegate, work_queue_name: critical}
    concurrency_limit: 1
    runtime_policy:
      retries: 2
      retry_delay_seconds: 1
      timeout_seconds: 600
      late_run: {mode: skip, skip_after_minutes: 60}
"""
FLOW = """
from __future__ import annotations

from datetime import date

import releasegate


@releasegate.governed("my-scoring", gate=True, log_prints=True)
def my_scoring(business_date: date, rows: int = 10) -> dict:
    return {"business_date": business_date.isoformat(), "rows": rows}
"""


@pytest.fixture
def team_flow(tmp_path, rg_home, monkeypatch, prefect_harness):
    project = tmp_path / "team"
    (project / "flows").mkdir(parents=True)
    (project / "prefect.yaml").write_text(PREFECT_YAML)
    (project / "flows" / "my_scoring.py").write_text(textwrap.dedent(FLOW))
    fast_capacity_policy(tmp_path, monkeypatch)
    # RELEASEGATE_PROJECT_DIR still names releasegate's checkout: the flow finds its own project.
    return load_flow_from_entrypoint(f"{project}/flows/my_scoring.py:my_scoring")


def test_a_teams_flow_gets_its_own_deployments_policy_and_passes_the_gateway(team_flow):
    assert (team_flow.name, team_flow.retries, team_flow.timeout_seconds) == ("my-scoring", 2, 600)
    state = team_flow(business_date="2026-12-01", return_state=True)  # a date given as text, as the UI does
    assert state.is_completed(), state.message
    assert state.result() == {"business_date": "2026-12-01", "rows": 10}


def test_releasegates_own_flows_keep_their_policy_whatever_the_project_dir(team_flow, tmp_path, monkeypatch):
    monkeypatch.setenv("RELEASEGATE_PROJECT_DIR", str(tmp_path / "team"))
    from tests.conftest import ROOT

    rollback = load_flow_from_entrypoint(f"{ROOT}/flows/rollback.py:rollback")
    assert (rollback.retries, rollback.timeout_seconds) == (1, 600)


def test_a_flow_for_an_undeclared_deployment_says_where_to_declare_it(tmp_path):
    (tmp_path / "prefect.yaml").write_text("deployments: []\n")
    (tmp_path / "orphan.py").write_text(
        "import releasegate\n\n@releasegate.governed('nowhere')\ndef orphan():\n    return 1\n"
    )
    with pytest.raises(Exception, match="deployment 'nowhere' is not in .*prefect.yaml: declare it there"):
        load_flow_from_entrypoint(f"{tmp_path}/orphan.py:orphan")


def test_a_limit_declared_in_runtime_policy_is_held_by_releasegate_around_the_run(tmp_path, rg_home, prefect_harness):
    """runtime_policy.concurrency_limit (instead of Prefect's key): the whole run holds a slot of the global
    concurrency limit deployment-<name>; CANCEL_NEW ends a run that finds every slot taken Cancelled."""
    from prefect import get_client
    from prefect.concurrency.sync import concurrency

    project = tmp_path / "waits"
    project.mkdir()
    (project / "prefect.yaml").write_text(
        PREFECT_YAML.replace("my-scoring", "my-waiting")
        .replace("    concurrency_limit: 1\n", "")
        .replace(
            "      retries: 2\n", "      retries: 0\n      concurrency_limit: 1\n      collision_strategy: CANCEL_NEW\n"
        )
    )
    (project / "waiting.py").write_text(
        "import releasegate\nfrom prefect import get_client\n\n"
        "@releasegate.governed('my-waiting')\ndef my_waiting() -> int:\n"
        "    with get_client(sync_client=True) as c:\n"
        "        return c.read_global_concurrency_limit_by_name('deployment-my-waiting').active_slots\n"
    )
    flow = load_flow_from_entrypoint(f"{project}/waiting.py:my_waiting")
    state = flow(return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == 1  # the run held the one slot
    with concurrency("deployment-my-waiting", occupy=1, strict=True):  # another run holds it
        state = flow(return_state=True)
    assert state.is_cancelled() and "every slot of its concurrency_limit (1) is taken" in state.message
    with get_client(sync_client=True) as c:
        assert c.read_global_concurrency_limit_by_name("deployment-my-waiting").active_slots == 0

"""A second team's model end to end through the CLI and workers, with nothing from ``examples/`` (issue 29).

The team's project (``tests/teamkit.py``): scikit-learn's breast-cancer data, a ``StandardScaler +
LogisticRegression`` pipeline, primary KPI ``f1``, CSV inputs per business date (with the label column
``target``), logged with ``mlflow.sklearn.log_model`` plus ``log_reference_profile``, its own governed
retrain deployment from its own prefect.yaml, in a temporary git checkout; its manifest entry has its own
EOD schedule. Deployed with ``releasegate deploy``, started with ``releasegate run`` / ``registry watch``,
approved with ``releasegate approve`` (signed), followed with ``releasegate watch``; the team's flow and the
backfill run in worker processes of their own (the team's package importable there, none of MLflow's own
variables set); releasegate's other deployments in a worker in this process. Real Prefect (harness), real
MLflow registry, real SQLite; nothing faked, not even the clock.

The tests share one team and run in order, each step of the issue's "done when" with its own test: the
first release promoted with signed approvals; a registry event -> the team's retrain child run ->
submit_candidate -> the new version promoted, reproducibility passing; EOD by the model's own scheduled
deployment; a drift day -> rollback, verified; a backfill across a weekend, its worker killed (SIGKILL)
mid-run, retried under its runtime policy and resumed at the first business date not done.
"""

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prefect import get_client
from prefect.client.schemas.objects import StateType
from typer.testing import CliRunner

from releasegate import bootstrap
from releasegate.adapters import mlflow_registry as registry
from releasegate.cli import app
from releasegate.policy.eod_deployments import eod_deployment_name
from releasegate.slugs import artifact_key, slug
from releasegate.store.db import dispose_engines
from tests.conftest import (
    ROOT,
    InProcessWorker,
    apply_deployments,
    approver_keys,
    cancel_unfinished_pool_runs,
    fast_capacity_policy,
)
from tests.teamkit import (
    MODEL,
    PROD,
    STAGING,
    artifacts_of,
    breast_cancer,
    build_team,
    commit,
    worker_env,
    worker_process,
)

pytestmark = pytest.mark.prefect
DEADLINE_S = 600  # the give-up time of each wait, not a speed requirement
EOD = {"cron": "30 18 * * 1-5", "timezone": "Europe/Zurich"}
EOD_DEPLOYMENT = eod_deployment_name(slug(MODEL))  # eod-scoring/bc-team, made by `releasegate deploy`
QUIET, DRIFTED = date(2026, 11, 23), date(2026, 11, 24)  # a Monday and a Tuesday
DUE = {QUIET: datetime(2026, 11, 23, 17, 30, tzinfo=UTC), DRIFTED: datetime(2026, 11, 24, 17, 30, tzinfo=UTC)}
START, END = date(2026, 11, 16), date(2026, 11, 27)  # two weeks: the weekend of the 21st and 22nd between
DAYS = [START + timedelta(days=i) for i in range((END - START).days + 1)]
BUSINESS_DAYS = [d for d in DAYS if d.weekday() < 5]
ROWS = 300  # a day's rows: an ordinary batch, drawn from the whole data set (clean)


@dataclass
class Team:
    folder: Path
    head: str  # the team's commit
    tmp: Path
    released: dict[str, str] = field(default_factory=dict)  # "v1"/"v2" -> prod version


def wait_for(pred: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def cli(*args: str, code: int = 0, stdout: bool = False) -> str:
    """`releasegate ARGS` (exit ``code``): what it printed, stdout and stderr as a terminal shows them
    (``stdout``: stdout only)."""
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == code, f"releasegate {' '.join(args)} -> {res.exit_code}\n{res.output}"
    return res.stdout if stdout else res.output


def started_run(output: str) -> str:
    """The flow run id `releasegate run` prints (``started <deployment> run '<name>': <id>``)."""
    m = re.search(r"^started .* run '.*': ([0-9a-f-]{36})$", output, re.M)
    assert m, output
    return m.group(1)


def flow_run(run_id: Any):
    with get_client(sync_client=True) as c:
        return c.read_flow_run(run_id)


def final(run_id: Any, what: str):
    finals = (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)
    return wait_for(lambda: (fr := flow_run(run_id)).state_type in finals and fr, what)


def day_inputs(day: date) -> Any:
    """The team's CSV rows for a business date: ROWS drawn from the data set; the drifted day's population
    moved (every feature three standard deviations up), its labels as they were."""
    data = breast_cancer()
    rows = data.iloc[np.random.default_rng(day.toordinal()).choice(len(data), size=ROWS, replace=True)]
    rows = rows.reset_index(drop=True)
    if day == DRIFTED:
        features = data.columns.drop("target")
        rows[features] = rows[features] + 3 * data[features].std()
    return rows


@pytest.fixture(scope="module")
def team(prefect_harness, tmp_path_factory) -> Iterator[Team]:
    """A fresh home, releasegate's deployments, the team's checkout and deployments (`releasegate deploy`),
    and the workers: the team's in a process of its own, releasegate's in this one."""
    from prefect.settings import PREFECT_API_URL

    from flows.backfill import backfill
    from flows.eod_scoring import eod_scoring
    from flows.promotion import promotion
    from flows.retrain import retrain
    from flows.rollback import rollback
    from releasegate.policy.calendar import WEEKDAYS_ONLY

    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("second-team")
    workers: list[InProcessWorker] = []
    team_worker = None
    try:
        mp.setenv("RELEASEGATE_HOME", str(tmp / "home"))
        mp.delenv("RELEASEGATE_DATABASE_URL", raising=False)
        mp.setenv("RELEASEGATE_PROJECT_DIR", str(ROOT))
        for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            mp.delenv(var, raising=False)
        approver_keys(tmp / "approvers", mp)  # each approver's key (`releasegate keys init`), pinned
        fast_capacity_policy(tmp, mp)
        mp.setenv("RELEASEGATE_APPROVAL_POLL_SECONDS", "1")
        mp.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))  # for `prefect deploy`'s process
        mp.setenv("COLUMNS", "250")
        apply_deployments(
            {
                "promotion": (promotion, "critical"),
                "rollback": (rollback, "critical"),
                "retrain": (retrain, "bulk"),
                "backfill": (backfill, "bulk"),
            }
        )
        cancel_unfinished_pool_runs()

        folder = tmp / "bc-team"
        manifest = build_team(folder, {"label_column": "target", "eod": EOD})
        mp.setenv("RELEASEGATE_MODELS", str(manifest))
        newest = WEEKDAYS_ONLY.on_or_before(datetime.now(UTC).date())  # what the drift gate reads
        for day in sorted({*BUSINESS_DAYS, newest}):
            day_inputs(day).to_csv(folder / "inputs" / f"{day.isoformat()}.csv", index=False)
        head = commit(folder)

        out = cli("deploy", "--prefect-file", str(folder / "prefect.yaml"))  # the team's own deployment
        assert "bc-retrain" in out
        out = cli("deploy", "--prefect-file", str(ROOT / "prefect.yaml"), "--name", "eod-scoring")
        assert f"model EOD deployment {EOD_DEPLOYMENT}: 30 18 * * 1-5 Europe/Zurich" in out, out

        team_worker = worker_process(folder, tmp / "team-worker.log", {"bc-retrain/bc-retrain": "bc_flows:bc_retrain"})
        for flows in (
            {"promotion": promotion},
            {"rollback": rollback},
            {"retrain": retrain},
            {EOD_DEPLOYMENT: eod_scoring},
        ):
            worker = InProcessWorker(flows, poll_seconds=1.0)
            workers.append(worker.__enter__())
        yield Team(folder=folder, head=head, tmp=tmp)
    finally:
        for worker in workers:
            worker.__exit__(None, None, None)
        if team_worker is not None:
            os.killpg(team_worker.pid, signal.SIGKILL)
            team_worker.wait(30)
        cancel_unfinished_pool_runs()
        mp.undo()
        dispose_engines()


def awaiting(role: str, version: str) -> str | None:
    """The promotion run of ``version`` when `releasegate awaiting` lists it waiting for ``role``."""
    out = cli("awaiting", "--json", stdout=True)
    rows = json.loads(out)
    hits = [
        r for r in rows if r["model_name"] == MODEL and str(r["candidate_version"]) == version and r["awaiting"] == role
    ]
    return str(hits[0]["flow_run_id"]) if hits else None


def release(version: str, ticket: str) -> str:
    """PM then Risk sign the promotion of staging ``version`` (`releasegate approve`, each with their own
    key), then `releasegate watch` follows it to its end: exit 0, promoted. Returns the promotion run."""
    run_id = wait_for(lambda: awaiting("pm", version), f"the promotion of v{version} to wait for PM")
    approve = ("--ref", ticket, "--wait-seconds", "300")
    out = cli("approve", run_id, "--role", "pm", "--by", "pm-anna", "--statement", "f1 target accepted", *approve)
    assert "PM_GATE_PASS by pm-anna" in out, out
    wait_for(lambda: awaiting("risk", version) == run_id, f"the promotion of v{version} to wait for Risk")
    out = cli("approve", run_id, "--role", "risk", "--by", "risk-carla", "--statement", "risk accepted", *approve)
    assert "RISK_GATE_PASS by risk-carla" in out, out
    cli("watch", run_id, "--timeout", str(DEADLINE_S))  # exit 0: Completed, promoted (held: 4, rejected: 5)
    return run_id


def promoted(run_id: str, version: str) -> str:
    """The prod version of ``version``'s final promotion record (sealed, trusted), after checking the signed
    approvals ``run_id`` recorded."""
    from releasegate.services.promotion import promotion_subject

    log = bootstrap.decision_log()
    trusted, untrusted = log.trusted(kind="promotion")
    assert untrusted == []
    [rec] = [
        r
        for r in trusted
        if r.details.get("status") == "final"
        and r.details.get("model_name") == MODEL
        and r.details.get("candidate_version") == version
    ]
    assert rec.decision_outcome.value == "accept", rec
    records, _ = log.trusted(kind="approval", subject=promotion_subject(run_id))
    assert {(a.actor, a.details["role"], a.decision_outcome.value) for a in records} == {
        ("releasegate:gates", "tech", "accept"),  # TECH_GATE_PASS: the gate report
        ("pm-anna", "pm", "accept"),
        ("risk-carla", "risk", "accept"),
    }
    signed = [a for a in records if a.details["role"] in ("pm", "risk")]
    assert all(a.details.get("signature") for a in signed), [a.details for a in signed]
    return str(rec.details["prod_version"])


def staging_versions() -> list[str]:
    return sorted((str(v.version) for v in registry.client().search_model_versions(f"name='{STAGING}'")), key=int)


def runs_of(deployment: str) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as c:
        dep = c.read_deployment_by_name(deployment)
        return c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))


def test_the_first_release_runs_the_teams_job_from_the_cli_and_is_promoted_with_signed_approvals(team):
    out = cli("run", "bc-retrain/bc-retrain", "-p", "reason=first-release", "-p", "C=0.003")
    job = final(started_run(out), "the team's retrain job (in the team's worker process)")
    assert job.state_type == StateType.COMPLETED, job.state.message
    [v1] = staging_versions()
    mv = registry.client().get_model_version(STAGING, v1)  # releasegate's registry, not the team's folder
    assert registry.client().get_run(mv.run_id).data.tags["mlflow.source.git.commit"] == team.head
    assert not (team.folder / "mlflow.db").exists()

    run_id = release(v1, "BC-REL-1")
    prod = promoted(run_id, v1)
    assert registry.aliases(PROD) == {"champion": prod}
    assert registry.version_tags(PROD, prod)["git_sha"] == team.head
    team.released["v1"] = prod


def test_a_registry_event_runs_the_teams_retrain_as_a_child_and_its_version_is_promoted_reproducibly(team):
    """A data scientist logs a version in dev from their shell (MLflow's variables from the stack's env
    file); the registry watcher's event reaches the retrain gateway, which runs the team's own deployment as
    a child run; the job hands its version over with submit_candidate and the promotion passes every gate,
    reproducibility included, with the team's commit."""
    import sys

    assert team.released.get("v1"), "needs the first release"
    settings = bootstrap.settings()
    shell = worker_env(
        team.folder,
        MLFLOW_TRACKING_URI=settings.resolved_tracking_uri,
        MLFLOW_REGISTRY_URI=settings.resolved_registry_uri,
    )
    code = "import bc_flows; print('DEV', bc_flows.train_and_log('2026-11-20', C=0.1, env='dev')[0])"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=team.folder, env=shell, capture_output=True, text=True, timeout=DEADLINE_S
    )
    assert done.returncode == 0 and "DEV 1" in done.stdout, (done.stdout + done.stderr)[-3000:]

    out = cli("registry", "watch", "--once")
    [gateway] = re.findall(r"^created: retrain ([0-9a-f-]{36})", out, re.M) or [out]
    state = final(gateway, "the retrain gateway run")
    assert state.state_type == StateType.COMPLETED, state.state.message
    [child] = [r for r in runs_of("bc-retrain/bc-retrain") if r.parent_task_run_id is not None]
    assert child.state_type == StateType.COMPLETED, child.state.message
    assert set(child.parameters) == {"reason"}  # the manifest's parameters, nothing else
    v2 = staging_versions()[-1]
    assert v2 != staging_versions()[0]

    run_id = release(v2, "BC-REL-2")
    prod = promoted(run_id, v2)
    assert registry.aliases(PROD) == {"champion": prod, "archive": team.released["v1"]}
    assert registry.version_tags(PROD, prod)["git_sha"] == team.head
    report = artifacts_of(run_id)[artifact_key("gate-report", MODEL)]
    assert re.search(rf"^\| reproducibility \| pass \|.*commit {team.head[:12]}", report, re.M), report
    assert "→ **PROMOTE**" in report, report
    team.released["v2"] = prod


def scheduled_eod(day: date):
    """A run of the model's own EOD deployment as Prefect's scheduler makes one for the 18:30 occurrence."""
    from prefect.states import Scheduled

    with get_client(sync_client=True) as c:
        dep = c.read_deployment_by_name(EOD_DEPLOYMENT)
        return c.create_flow_run_from_deployment(
            dep.id,
            state=Scheduled(scheduled_time=DUE[day]),
            idempotency_key=f"scheduled {dep.id} {DUE[day].isoformat()}",
        )


def summary_of(markdown: str) -> dict[str, str]:
    """The ``| field | value |`` table of an EOD artifact."""
    head = markdown.split("\n## ")[0]
    rows = [line.strip("|").split("|") for line in head.splitlines() if line.startswith("| ")]
    return {k.strip(): v.strip() for k, v in rows[1:]}


def verdict(day: date):
    trusted, untrusted = bootstrap.decision_log().trusted(kind="monitoring", subject=f"model:{MODEL}")
    assert untrusted == []
    [rec] = [r for r in trusted if r.details["business_date"] == day.isoformat()]
    return rec


def test_eod_by_the_models_own_scheduled_deployment_scores_its_csv_day_with_its_kpi(team):
    assert team.released.get("v2"), "needs the retrained release"
    with get_client(sync_client=True) as c:
        dep = c.read_deployment_by_name(EOD_DEPLOYMENT)
    [sched] = dep.schedules
    assert (sched.schedule.cron, sched.schedule.timezone, sched.active) == (EOD["cron"], EOD["timezone"], True)
    assert dep.parameters["model_name"] == MODEL and dep.work_queue_name == "critical"

    run = final(scheduled_eod(QUIET).id, "the scheduled EOD run")
    assert run.state_type == StateType.COMPLETED, run.state.message
    rec = verdict(QUIET)  # the business date from the schedule's occurrence (18:30 Zurich on the 23rd)
    assert rec.details["flow_run_id"] == str(run.id)
    assert rec.details["action"] == "monitor" and rec.details["reason_code"] == "WITHIN_LIMITS", rec.details
    assert rec.details["champion"]["version"] == team.released["v2"], rec.details
    eod = summary_of(artifacts_of(run.id)[artifact_key("eod", MODEL)])  # on the run: the day's summary
    assert eod["business_date"] == QUIET.isoformat() and eod["champion_version"] == team.released["v2"], eod
    assert eod["rows"] == str(ROWS) and eod["failures"] == "0" and eod["kpi"] == "f1", eod
    assert 0.8 < float(eod["champion_metric"]) <= 1.0, eod


def test_a_drift_day_rolls_back_to_the_previous_approved_version_and_verifies_it(team):
    assert team.released.get("v2"), "needs the retrained release"
    run = final(scheduled_eod(DRIFTED).id, "the drifted day's EOD run")
    assert run.state_type == StateType.COMPLETED, run.state.message
    rec = verdict(DRIFTED)
    assert rec.details["action"] == "rollback" and rec.details["reason_code"] == "DRIFT_URGENT", rec.details

    def rolled_back():
        trusted, _ = bootstrap.decision_log().trusted(kind="rollback", subject=f"model:{MODEL}")
        return [r for r in trusted if r.details.get("status") == "final"]

    [done] = wait_for(rolled_back, "the rollback's final record")
    [rb] = [r for r in runs_of("rollback/rollback") if r.parameters.get("model_name") == MODEL]
    rb = final(rb.id, "the rollback run")
    assert rb.state_type == StateType.COMPLETED, rb.state.message
    assert rb.parameters["business_date"] == DRIFTED.isoformat()
    assert registry.alias_version(PROD, "champion") == team.released["v1"]
    on_day = done.details["verification"]["business_date"]
    assert done.details["verified"] is True, done.details  # v1 scored on the drifted day's own CSV rows
    assert on_day["rows"] == ROWS and on_day["failures"] == 0 and on_day["kpi"] == "f1"


def completed_days() -> list[date]:
    return sorted(d for _, d in bootstrap.scheduling_store().completed([f"backfill:{MODEL}"], DAYS))


def test_a_backfill_across_a_weekend_killed_mid_run_resumes_at_the_first_business_date_not_done(team):
    from prefect.states import AwaitingRetry, Crashed

    from flows.backfill import backfill
    from releasegate.adapters.config import load_gateway_config
    from releasegate.adapters.prefect_crashes import retry_crashed_runs

    out = cli("run", "backfill", "-p", f"start_date={START}", "-p", f"end_date={END}", "--model", MODEL)
    run_id = started_run(out)
    proc = worker_process(team.folder, team.tmp / "backfill-worker.log", {"backfill": "flows.backfill:backfill"})
    try:
        wait_for(lambda: len(completed_days()) >= 2 or proc.poll() is not None, "two dates of the backfill")
        assert proc.poll() is None, (team.tmp / "backfill-worker.log").read_text()[-3000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the worker and the run inside it, as when its machine dies
        proc.wait(30)
    done = completed_days()
    assert flow_run(run_id).state_type == StateType.RUNNING  # nothing knows yet
    assert 2 <= len(done) < len(BUSINESS_DAYS) and done == BUSINESS_DAYS[: len(done)], done

    # what Prefect's zombie automation does when the heartbeats stop (tests/e2e/test_crash_recovery.py),
    # then the deferral sweeper's crash retry under the deployment's runtime policy (bulk: one retry)
    with get_client(sync_client=True) as c:
        c.set_flow_run_state(run_id, Crashed(message="no heartbeat"), force=True)
        [handled] = retry_crashed_runs(bootstrap.app(), load_gateway_config())
        assert (handled.flow_run_id, handled.action) == (run_id, "retry"), handled
        assert c.read_flow_run(run_id).state.name == "AwaitingRetry"
        c.set_flow_run_state(run_id, AwaitingRetry(scheduled_time=datetime.now(UTC)))  # due now, not in 300 s
    with InProcessWorker({"backfill": backfill}, poll_seconds=1.0):
        resumed = final(run_id, "the retried backfill")
    assert resumed.state_type == StateType.COMPLETED and resumed.run_count == 2, resumed.state.message
    rows = artifacts_of(run_id)[artifact_key("backfill", MODEL)]
    status = {
        r["business_date"]: r["status"] for r in (__import__("json").loads(rows) if isinstance(rows, str) else rows)
    }
    assert (
        status
        == {
            **{d.isoformat(): "already_done" for d in done},  # resumed at the first business date not done
            **{d.isoformat(): "scored" for d in BUSINESS_DAYS[len(done) :]},
            "2026-11-21": "not_business_day",  # the weekend: skipped by the model's calendar, not missing data
            "2026-11-22": "not_business_day",
        }
    )
    assert completed_days() == BUSINESS_DAYS
    cli("audit", "verify")  # the sealed log, every record of the five steps

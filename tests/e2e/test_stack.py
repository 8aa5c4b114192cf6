"""Integration on real servers: a `prefect server start` on PostgreSQL, two real workers on one pool.

The Prefect server runs on a free loopback port with its own PostgreSQL database; two
`prefect worker start --pool releasegate` processes execute the runs (each in its own subprocess, as
in production). The decision log lives in PostgreSQL for the flow scenarios, and in PostgreSQL and
SQLite for the duplicate-event test. Only this module's client calls go to that server
(`temporary_settings`); the rest of the session keeps the test harness.
"""

import contextvars
import random
import subprocess
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from releasegate.store.db import dispose_engines
from tests.conftest import _PG_SKIP, PG_ADMIN_URL, ROOT, drain_prefect_services

pytestmark = [pytest.mark.prefect, pytest.mark.postgres]

POLICY = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text()) | {
    "pool_concurrency_limit": 2,
    "queues": [
        {"name": "critical", "priority": 1, "concurrency_limit": 2},
        {"name": "bulk", "priority": 10, "concurrency_limit": 2},
    ],
    "windows": [],
    "backoff_seconds": [2, 3],
}


def _create_db(prefix: str) -> str:
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_db(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PG_BASE = PG_ADMIN_URL.rsplit("/", 1)[0].split("://", 1)[1]  # postgres@127.0.0.1:5432


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Prefect server on PostgreSQL + two workers; yields the API URL, home and worker logs."""
    import os

    if _PG_SKIP:
        if os.environ.get("CI"):
            pytest.fail(_PG_SKIP)
        pytest.skip(_PG_SKIP)
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from releasegate.tools.stack import base_env, exe, free_port, start_prefect_server, start_worker

    home = tmp_path_factory.mktemp("stack")
    prefect_db, log_db = _create_db("rg_prefect"), _create_db("rg_log")
    policy = home / "capacity.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    env = base_env(home) | {
        "RELEASEGATE_PROJECT_DIR": str(ROOT),
        "RELEASEGATE_CAPACITY_POLICY": str(policy),
        "RELEASEGATE_DATABASE_URL": f"postgresql+psycopg://{PG_BASE}/{log_db}",
        "RELEASEGATE_MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "PREFECT_LOGGING_LEVEL": "INFO",
        # No scheduler service: `eod-scoring/credit` is deployed with its real cron, and a scheduled EOD run due
        # within the priority window (18:30 Zurich) would rightly hold every backfill back, so the tests
        # would depend on the time of day. Every run here is created by the test itself.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    }
    server, api = start_prefect_server(home, free_port(), f"postgresql+asyncpg://{PG_BASE}/{prefect_db}", env)
    procs = [server]
    wenv = env | {"PREFECT_API_URL": api}
    try:
        # Deployed from prefect.yaml like `releasegate up` does: its pull step runs flows from this checkout.
        for args in (["infra", "up", "--policy-file", str(policy)], ["deploy", "-n", "eod-scoring", "-n", "backfill"]):
            done = subprocess.run([exe("releasegate"), *args], env=wenv, cwd=ROOT, capture_output=True, text=True)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        with temporary_settings(updates={PREFECT_API_URL: api}), get_client(sync_client=True) as c:
            ids = {n: c.read_deployment_by_name(f"{n}/{n}").id for n in ("eod-scoring", "backfill")}
        assert not [r for i in ids.values() for r in _runs_at(api, i)], "the stack's server scheduled runs"
        workers = [start_worker(home, f"w{i}", wenv, ROOT) for i in (1, 2)]
        procs += workers
        yield {"api": api, "home": home, "env": env, "ids": ids, "workers": workers}
    finally:
        drain_prefect_services()  # while the server is up (tests/conftest.py says why)
        for p in reversed(procs):
            p.stop()
        dispose_engines()
        _drop_db(prefect_db)
        _drop_db(log_db)


@pytest.fixture
def on_stack(stack, monkeypatch):
    """This test's Prefect client talks to the stack; its decision log and registry are the stack's."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from releasegate.adapters.prefect_runs import forget_deployment_ids

    for k in (
        "RELEASEGATE_HOME",
        "RELEASEGATE_DATABASE_URL",
        "RELEASEGATE_MLFLOW_TRACKING_URI",
        "RELEASEGATE_PROJECT_DIR",
    ):
        monkeypatch.setenv(k, stack["env"][k])
    monkeypatch.setenv("RELEASEGATE_CAPACITY_POLICY", stack["env"]["RELEASEGATE_CAPACITY_POLICY"])
    forget_deployment_ids()
    with temporary_settings(updates={PREFECT_API_URL: stack["api"]}):
        yield stack
    forget_deployment_ids()
    dispose_engines()


def _runs_at(api: str, deployment_id):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        return _runs(deployment_id)


def _runs(deployment_id):
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    from releasegate.adapters.prefect_query import read_all_flow_runs

    with get_client(sync_client=True) as c:
        return read_all_flow_runs(c, deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


RUNS_DEADLINE_S = 600  # for runs on a busy machine: a condition is awaited, this is only the give-up time


def _wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _states(run_id):
    from prefect import get_client

    with get_client(sync_client=True) as c:
        return c.read_flow_run_states(run_id)


def test_pool_cap_holds_across_two_workers(on_stack):
    """Prefect promises the pool cap and that every run is taken; not which worker takes which run."""
    from prefect import get_client
    from prefect.client.schemas.objects import StateType

    ids = []
    with get_client(sync_client=True) as c:
        for i in range(6):
            d = (date(2026, 3, 2) + timedelta(days=i)).isoformat()
            ids.append(
                c.create_flow_run_from_deployment(
                    on_stack["ids"]["backfill"], parameters={"start_date": d, "end_date": d}
                ).id
            )
    peak, seen = 0, {}
    deadline = time.monotonic() + RUNS_DEADLINE_S  # a deadline for a stuck run, not a speed requirement
    with get_client(sync_client=True) as c:
        while time.monotonic() < deadline:
            runs = [c.read_flow_run(i) for i in ids]
            busy = sum(r.state_type in (StateType.RUNNING, StateType.PENDING) for r in runs)
            peak = max(peak, busy)
            seen.update({r.id: r.state_type for r in runs})
            if all(r.state_type == StateType.COMPLETED for r in runs):
                break
            assert not [r for r in runs if r.state_type in (StateType.FAILED, StateType.CRASHED)], runs
            time.sleep(0.2)
    assert all(s == StateType.COMPLETED for s in seen.values()), (
        f"not all 6 runs completed within {RUNS_DEADLINE_S} s: {seen}"
    )
    assert 1 <= peak <= 2, f"pool cap 2 exceeded: {peak} runs held slots at once"
    # Which worker took which run is Prefect's business (one worker may take all): information only.
    submitted = {
        w.name: Path(w.log).read_text().lower().count("submitted to infrastructure") for w in on_stack["workers"]
    }
    print(f"runs submitted per worker (information, not asserted): {submitted}")


def _run_logs(run_id) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    found, offset = [], 0
    with get_client(sync_client=True) as c:
        while True:
            page = c.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200, offset=offset)
            found += page
            if len(page) < 200:
                break
            offset += len(page)
    return found


def _held(run_id) -> list[tuple[datetime, datetime]]:
    """When the run's body held its admission slots: from each "capacity gateway: admitted" line to the
    next "releasing admission slots" line. Both are logged while the slots are held, so these spans
    lie inside the real holding time: spans that overlap mean slots that overlapped."""
    from releasegate.adapters.prefect_slots import RELEASING

    spans, start = [], None
    for log in sorted(_run_logs(run_id), key=lambda x: x.timestamp):
        if log.message.startswith("capacity gateway: admitted"):
            start = log.timestamp
        elif log.message.startswith(RELEASING) and start is not None:
            spans.append((start, log.timestamp))
            start = None
    return spans


def _peak(spans: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def test_two_workers_racing_never_admit_more_than_the_cap(on_stack):
    """Atomic admission across workers. Prefect's own pool, queue and deployment caps are lifted (as if
    they overshot, Prefect #9270/#17415), so the two workers start as many of the 8 backfills at once as they
    like and each run's gateway races the others for the policy's 2 slots, again at every re-evaluation.
    Every run completes, the runs that held slots at once never exceed 2, and no slot is left taken."""
    from prefect import get_client
    from prefect.client.schemas.actions import DeploymentUpdate, WorkPoolUpdate
    from prefect.client.schemas.objects import StateType

    from releasegate.adapters import prefect_slots
    from releasegate.policy.capacity import GatewayConfig

    config = GatewayConfig.model_validate(POLICY)
    with get_client(sync_client=True) as c:
        bulk = next(q for q in c.read_work_queues(work_pool_name="releasegate") if q.name == "bulk")
        c.update_work_pool("releasegate", WorkPoolUpdate(concurrency_limit=50))
        c.update_work_queue(bulk.id, concurrency_limit=50)
        backfill = on_stack["ids"]["backfill"]
        deployment_cap = c.read_deployment(backfill).global_concurrency_limit
        c.update_deployment(backfill, DeploymentUpdate(concurrency_limit=50))  # its prefect.yaml says 2
        try:
            ids = [
                c.create_flow_run_from_deployment(backfill, parameters={"start_date": d, "end_date": d}).id
                for d in ((date(2026, 4, 1) + timedelta(days=i)).isoformat() for i in range(8))
            ]
            _wait(
                lambda: (
                    all(c.read_flow_run(i).state_type == StateType.COMPLETED for i in ids)
                    or [r for r in ids if c.read_flow_run(r).state_type in (StateType.FAILED, StateType.CRASHED)]
                ),
                RUNS_DEADLINE_S,
                "the 8 backfills to complete",
            )
        finally:
            c.update_work_pool("releasegate", WorkPoolUpdate(concurrency_limit=POLICY["pool_concurrency_limit"]))
            c.update_work_queue(bulk.id, concurrency_limit=2)
            assert deployment_cap is not None
            c.update_deployment(backfill, DeploymentUpdate(concurrency_limit=deployment_cap.limit))
        states = {i: c.read_flow_run(i).state_type for i in ids}
    assert all(s == StateType.COMPLETED for s in states.values()), states
    spans = {i: _wait(lambda i=i: _held(i), 120, f"the admission log lines of {i}") for i in ids}
    # One span per attempt: a run the runtime policy retried (e.g. 8 first uses of a fresh MLflow SQLite
    # database racing on its migration) was admitted again, and each attempt's slots count below.
    assert all(len(v) >= 1 for v in spans.values()), spans
    peak = _peak([s for v in spans.values() for s in v])
    assert 1 <= peak <= 2, f"policy cap 2 exceeded: {peak} runs held admission slots at once"
    assert prefect_slots.held_slots(config) == dict.fromkeys(prefect_slots.held_slots(config), 0)
    deferred = sum("Deferred" in [st.name for st in _states(i)] for i in ids)
    attempts = sum(len(v) for v in spans.values())
    print(f"racing (information): {deferred} of 8 runs deferred at least once, {attempts} admissions, peak {peak}")


def _admitted_at(run_id) -> datetime | None:
    """When the capacity gateway admitted the run: its "capacity gateway: admitted" log line.

    That line is logged after the gateway read the pool, so it is later than every state change the
    gateway saw; the run's Running state is not (it is set before the gateway is asked).
    """
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    found, offset = [], 0
    with get_client(sync_client=True) as c:
        while True:
            page = c.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200, offset=offset)
            found += [log.timestamp for log in page if log.message.startswith("capacity gateway: admitted")]
            if len(page) < 200:
                break
            offset += len(page)
    return min(found) if found else None


def _completed_backfills(c, deployment_id, n: int) -> None:
    """At least ``n`` completed runs of the deployment, so the gateway plans with its own history."""
    from prefect.client.schemas.objects import StateType

    have = [r for r in _runs(deployment_id) if r.state_type == StateType.COMPLETED]
    ids = [
        c.create_flow_run_from_deployment(deployment_id, parameters={"start_date": d, "end_date": d}).id
        for d in ((date(2026, 5, 4) + timedelta(days=i)).isoformat() for i in range(max(0, n - len(have))))
    ]
    _wait(lambda: all(c.read_flow_run(i).state_type == StateType.COMPLETED for i in ids), RUNS_DEADLINE_S, "history")


def test_a_storm_before_eod_starts_what_fits_defers_the_rest_to_eods_reservation_and_eod_starts_on_time(on_stack):
    """The shipped rule (admission: reservation) on two real workers, pool cap 2. Two EOD runs due in 20 min
    reserve both slots. Backfills whose own history says they end before then start at once; storm
    backfills of a deployment without history (unknown duration) would take a slot EOD needs, so each is
    deferred PRIORITY_CONFLICT to the end of EOD's reservation, naming the EOD run. EOD, once due, starts
    without a deferral; when it has finished long before its reservation's planned end, the deferral
    sweeper wakes the storm, which then completes. The pool cap of 2 holds throughout."""
    from prefect import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.states import Scheduled

    from flows.backfill import backfill
    from releasegate import bootstrap
    from releasegate.adapters.prefect_deferrals import sweep
    from releasegate.policy.capacity import GatewayConfig
    from tests.conftest import prod_version

    config = GatewayConfig.model_validate(POLICY)
    assert config.admission == "reservation"  # the shipped policy's rule
    prod_version("credit", 1, alias="champion")
    ids = on_stack["ids"]
    due = datetime.now(UTC) + timedelta(minutes=20)
    with get_client(sync_client=True) as c:
        _completed_backfills(c, ids["backfill"], 3)
        # the workers' subprocess runs the entrypoint (flows/backfill.py) from this checkout
        storm_dep = backfill.to_deployment(
            name="storm", work_pool_name="releasegate", work_queue_name="bulk", job_variables={"working_dir": str(ROOT)}
        ).apply()
        eods = [
            c.create_flow_run_from_deployment(
                ids["eod-scoring"],
                parameters={"model_name": "credit", "business_date": d},  # eod-scoring names no model itself
                state=Scheduled(scheduled_time=due),
            ).id
            for d in ("2026-06-01", "2026-06-02")
        ]
        day = lambda i: (date(2026, 6, 1) + timedelta(days=i)).isoformat()  # noqa: E731
        fit = [
            c.create_flow_run_from_deployment(ids["backfill"], parameters={"start_date": day(i), "end_date": day(i)}).id
            for i in range(2)
        ]
        storm = [
            c.create_flow_run_from_deployment(storm_dep, parameters={"start_date": day(i), "end_date": day(i)}).id
            for i in range(3)
        ]

        def deferral_of(run_id):
            state = c.read_flow_run(run_id).state_type
            assert state not in (StateType.FAILED, StateType.CRASHED), f"run {run_id} ended {state}"
            return [r for r in bootstrap.decision_log().query(kind="deferral") if r.subject == f"flow_run:{run_id}"]

        deferrals = {
            i: _wait(lambda i=i: deferral_of(i), RUNS_DEADLINE_S, f"the deferral of storm run {i}")[0] for i in storm
        }
        for rec in deferrals.values():
            assert rec.details["deferral_reason_code"] == "PRIORITY_CONFLICT", rec.decision_rationale
            assert rec.details["evidence"]["blocking_runs"][0] in {str(e) for e in eods}
            assert "eod-scoring" in rec.decision_rationale and "reservation" in rec.decision_rationale
            assert datetime.fromisoformat(rec.details["next_evaluation_at"]) > due  # the reservation's end
        _wait(lambda: all(c.read_flow_run(i).state_type == StateType.COMPLETED for i in fit), RUNS_DEADLINE_S, "fits")
        assert not [i for i in fit if deferral_of(i)], "a backfill that ends before EOD is due was deferred"

        for e in eods:  # EOD is due now (a worker would otherwise wait 20 min for it)
            assert c.set_flow_run_state(e, Scheduled(scheduled_time=datetime.now(UTC))).status.value == "ACCEPT"
        _wait(lambda: all(c.read_flow_run(e).state_type == StateType.COMPLETED for e in eods), RUNS_DEADLINE_S, "EOD")
        assert not [e for e in eods if deferral_of(e)], "an EOD run was deferred"

        woken: list[str] = []

        def storm_done() -> bool:
            woken.extend(
                sweep(bootstrap.app(), config).woken
            )  # the deferral-sweeper's minute, as often as the test likes
            return all(c.read_flow_run(i).state_type == StateType.COMPLETED for i in storm)

        _wait(storm_done, RUNS_DEADLINE_S, "the woken storm runs to complete")
    assert set(woken) == {str(i) for i in storm}, woken  # each woken, none left to its planned time
    eod_end = max(s.timestamp for e in eods for s in _states(e) if s.type == StateType.COMPLETED)
    assert all(_admitted_at(i) >= eod_end for i in storm)
    spans = [s for i in [*fit, *storm, *eods] for s in _wait(lambda i=i: _held(i), 120, f"the admission lines of {i}")]
    assert 1 <= _peak(spans) <= 2, f"pool cap 2 exceeded: {_peak(spans)} runs held admission slots at once"


@pytest.mark.parametrize("log_backend", ["sqlite", "postgres"])
def test_duplicate_events_from_8_threads_make_one_run_per_key(on_stack, log_backend, tmp_path, monkeypatch):
    from releasegate import bootstrap
    from releasegate.adapters.prefect_runs import send_event

    if log_backend == "sqlite":
        monkeypatch.setenv("RELEASEGATE_DATABASE_URL", f"sqlite:///{tmp_path / 'log.db'}")
        dbname = None
    else:
        dbname = _create_db("rg_dupes")
        monkeypatch.setenv("RELEASEGATE_DATABASE_URL", f"postgresql+psycopg://{PG_BASE}/{dbname}")
    try:
        tag = uuid.uuid4().hex[:8]
        unique = 40
        events = [
            {
                "event_id": f"{tag}-{i}",
                "event_type": "data.partition.arrived@v1",
                "occurred_at": datetime.now(UTC).isoformat(),
                "producer": "stack-test",
                "idempotency_key": f"stack:{tag}:{i}",
                "payload": {"dataset": f"positions-{tag}", "business_date": "2026-03-20"},
            }
            for i in range(unique)
        ]
        deliveries = events + [dict(random.Random(i).choice(events), event_id=f"{tag}-re-{i}") for i in range(80)]
        random.Random(3).shuffle(deliveries)
        results, errors, lock = [], [], threading.Lock()

        def worker(chunk):
            try:
                out = [send_event(bootstrap.app(), e) for e in chunk]
                with lock:
                    results.extend(out)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        # Threads do not inherit context variables: give each the test's Prefect settings.
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(worker, deliveries[i::8])) for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        created = {r.flow_run_id for r in results if r.status == "created"}
        assert len(results) == 120 and len(created) == unique
        assert {r.flow_run_id for r in results} == created  # every duplicate answered with its run
        runs = [
            r
            for r in _runs(on_stack["ids"]["backfill"])
            if (r.idempotency_key or "").startswith(f"backfill:stack:{tag}:")
        ]
        assert len(runs) == unique  # what the real server holds
    finally:
        dispose_engines()
        if dbname:
            _drop_db(dbname)

"""Shared fixtures: real databases (SQLite, PostgreSQL), a once-per-session Prefect harness, a fake clock."""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# as the releasegate CLI and the pool's runs do: a test that applies the zombie automation
# (`infra up`) must not see a live run of the shared harness marked Crashed between slow heartbeats
os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30")
# The CLI's rich consoles are made once, at import, and keep the COLUMNS they saw then (else the
# runner's 80): every test reads CLI output on one wide terminal, whichever test imported the CLI first.
os.environ.setdefault("COLUMNS", "250")

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from releasegate.clock import FixedClock
from releasegate.store.db import dispose_engines

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("RELEASEGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"


_PG_SKIP = _pg_available()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))


@pytest.fixture
def wide(monkeypatch):
    """A wide terminal for CLI output read in tests: rich wraps at the runner's width otherwise."""
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    yield f"sqlite:///{tmp_path / 'decisions.db'}"
    dispose_engines()


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if _PG_SKIP:
        if os.environ.get("CI"):
            pytest.fail(_PG_SKIP)
        pytest.skip(_PG_SKIP)
    import psycopg

    name = f"rg_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    dispose_engines()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def rg_home(tmp_path, monkeypatch) -> Path:
    """An empty RELEASEGATE_HOME for one test; the decision log is a SQLite file in it. The shipped
    approvers each get a signing key (``approver_keys``)."""
    home = tmp_path / "home"
    monkeypatch.setenv("RELEASEGATE_HOME", str(home))
    monkeypatch.delenv("RELEASEGATE_DATABASE_URL", raising=False)
    monkeypatch.setenv("RELEASEGATE_PROJECT_DIR", str(ROOT))
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # an earlier test's governed run set them
        monkeypatch.delenv(var, raising=False)  # to its own store; a subprocess must not inherit that
    approver_keys(tmp_path / "approvers", monkeypatch)
    yield home
    dispose_engines()


def approver_keys(folder: Path, monkeypatch, extra: dict[str, list[str]] | None = None) -> Path:
    """What each approver does once (`releasegate keys init`) and the admin pins: a key per name on the
    shipped allow-lists (plus ``extra`` role -> names), in ``folder/keys`` (RELEASEGATE_KEY_DIR), and a copy
    of the approvers block with the public keys (RELEASEGATE_APPROVERS). Returns the copy."""
    import yaml

    from releasegate.store.keys import create_key

    doc = yaml.safe_load((ROOT / "blocks" / "approvers.yaml").read_text())
    for role, names in (extra or {}).items():
        doc[role] = [*doc.get(role, []), *names]
    roles = ("pm", "risk", "compliance", "exceptions", "overrides", "admins")
    names = sorted({n for role in roles for n in doc.get(role, [])})
    doc["keys"] = {n: create_key(folder / "keys", n)[1] for n in names}
    path = folder / "approvers.yaml"
    path.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("RELEASEGATE_KEY_DIR", str(folder / "keys"))
    monkeypatch.setenv("RELEASEGATE_APPROVERS", str(path))
    return path


def signed_approval(run_id, role: str, approver: str, reference: str = "REV-1", decision: str = "approve", **kw):
    """The run input `releasegate approve` sends: the fields and a token signed with the approver's key."""
    from releasegate import bootstrap
    from releasegate.store.keys import create_key, key_path
    from releasegate.testing.approval_driver import signed_input

    if not key_path(bootstrap.settings().key_dir, approver).exists():  # someone with a key nobody pinned
        create_key(bootstrap.settings().key_dir, approver)
    return signed_input(
        str(run_id), role, approver, bootstrap.settings().key_dir, reference=reference, decision=decision, **kw
    )


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server per session (it takes 12-20 s to start on these machines)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def drain_prefect_services(timeout: float = 60) -> None:
    """Send what this process queued for a Prefect server (events, run logs) while that server is still up.

    Call it in the teardown of a fixture that stops its own server, before stopping it: Prefect's
    EventsWorker otherwise keeps the events for the stopped server and retries them when pytest exits,
    for 20+ minutes of "Unable to connect to ws://127.0.0.1:<port>/api/events/in" after the summary
    (which then drowned the summary in CI's output). A drained worker is started afresh on next use."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=timeout)
    EventsWorker.drain_all(timeout=timeout)


def pytest_unconfigure(config) -> None:
    """Nothing Prefect logs after the session may bury pytest's summary: pytest has closed the stream
    Prefect's console handler writes to, and every late warning became a 60-line "Logging error"."""
    import logging

    logging.raiseExceptions = False
    for name in ("prefect.events.clients", "prefect._internal.concurrency"):
        logging.getLogger(name).disabled = True


def cancel_unfinished_pool_runs(pool: str = "releasegate") -> int:
    """Cancel every unfinished run on the shared test pool (the harness is shared by all modules) and free
    the slots of releasegate's limits on it."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        WorkPoolFilter,
        WorkPoolFilterName,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled

    from releasegate.adapters.prefect_query import read_all_flow_runs

    unfinished = [StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED, StateType.PAUSED]
    with get_client(sync_client=True) as c:
        runs = read_all_flow_runs(
            c,
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=unfinished))),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
        )
        for r in runs:
            c.set_flow_run_state(r.id, Cancelled(message="test cleanup"), force=True)
        # Their leased slots too: a real server's repossessor frees a dead holder's slots once its lease
        # lapses, the test harness (an ephemeral server) runs no repossessor, so a process an earlier test
        # killed would hold its slots for the rest of the session.
        for limit in c.read_global_concurrency_limits(limit=200):
            if limit.name.startswith((f"rg-pool-{pool}", f"rg-queue-{pool}-")) and limit.active_slots:
                c.update_global_concurrency_limit(limit.name, GlobalConcurrencyLimitUpdate(active_slots=0))
    return len(runs)


def fast_capacity_policy(tmp_path: Path, monkeypatch) -> Path:
    """The shipped capacity policy without windows and with 1-2 s backoff, for runs on the harness."""
    import yaml

    policy = yaml.safe_load((ROOT / "blocks" / "capacity_policy.yaml").read_text()) | {
        "windows": [],
        "backoff_seconds": [1, 2],
    }
    path = tmp_path / "capacity.yaml"
    path.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("RELEASEGATE_CAPACITY_POLICY", str(path))
    return path


@pytest.fixture
def live_clock():
    """A fixed clock set to real now: the Prefect server schedules deferred runs in real time."""
    from releasegate.bootstrap import use_clock

    c = FixedClock(datetime.now(UTC))
    with use_clock(c):
        yield c


from releasegate.testing.inprocess_worker import InProcessWorker  # noqa: E402,F401 (shared with the demo)

APPROVAL_REFS = {
    f: f"{f}:test"
    for f in ("tech_gate_report_ref", "pm_gate_ref", "risk_gate_ref", "joint_release_ack_ref", "rollback_plan_ref")
}


def approve_prod_version(model: str, prod_version: str, previous_champion: str | None = None) -> None:
    """The pending and final promotion records the promotion flow writes (what rollback accepts as
    "approved"), written through the service path, so they carry the service seal."""
    from releasegate import bootstrap
    from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision

    log = bootstrap.decision_log()
    common = {
        "model_name": model,
        "candidate_version": prod_version,
        "prod_version": prod_version,
        "previous_champion": previous_champion,
    }
    pending = log.append(
        NewDecision(
            decision_kind=DecisionKind.promotion,
            decision_outcome=DecisionOutcome.accept,
            decision_rationale="test promotion (pending registry)",
            subject=f"model:{model}",
            actor="test",
            details={**common, "status": "pending"},
            **APPROVAL_REFS,
        )
    )
    log.append(
        NewDecision(
            decision_kind=DecisionKind.promotion,
            decision_outcome=DecisionOutcome.accept,
            decision_rationale="test promotion",
            subject=f"model:{model}",
            actor="test",
            details={**common, "status": "final", "pending_decision_id": pending.decision_id},
            **APPROVAL_REFS,
        )
    )


def prod_version(model: str, seed: int, *, rows: int = 800, without: tuple[str, ...] = (), alias: str | None = None):
    """Train, register in staging, copy to prod (binary) and optionally alias it; returns the prod version."""
    from credit_example.training import log_and_register, train

    from releasegate.adapters import mlflow_registry as registry

    staged = log_and_register(train(seed=seed, rows=rows, without=without), model, "staging")
    version = registry.copy_to(registry.model_name("staging", model), staged, registry.model_name("prod", model))
    if alias:
        registry.set_alias(registry.model_name("prod", model), alias, version)
    return version


def apply_deployments(flows: dict) -> dict:
    """``infra up`` with the shipped capacity policy, then ``{name: (flow, queue)}`` as deployments on the
    ``releasegate`` pool of the current Prefect API; returns their ids."""
    from releasegate.adapters.config import capacity_from_file
    from releasegate.adapters.prefect_infra import infra_up

    infra_up(capacity_from_file(ROOT / "blocks" / "capacity_policy.yaml"))
    return {
        name: f.to_deployment(name=name, work_pool_name="releasegate", work_queue_name=q).apply()
        for name, (f, q) in flows.items()
    }


def govern(monkeypatch, tmp_path: Path, *names: str, **fields) -> Path:
    """A model manifest ($RELEASEGATE_MODELS) with the shipped ``credit`` entry copied for each name
    (its data sources, KPI and task), ``fields`` overriding; returns the file."""
    import yaml

    shipped = yaml.safe_load((ROOT / "blocks" / "models.yaml").read_text())["models"]
    base = next(m for m in shipped if m["name"] == "credit")
    doc = {"models": [{**base, "name": n, **fields} for n in names]}
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.setenv("RELEASEGATE_MODELS", str(path))
    return path

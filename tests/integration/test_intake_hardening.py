"""Intake hardening: contract-valid events fit the log, the accept decision precedes the run, crashes
between the steps are completed by the redelivery, and the webhook bounds the body it reads.

``create_run`` is intake's own port (not Prefect): the fake here behaves like Prefect's idempotency key
(same key, same run). The databases are real.
"""

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from releasegate.policy.webhooks import sign
from releasegate.services.intake import DEFAULT_ROUTES, intake_event, prefect_idempotency_key
from releasegate.store.decision_log import DecisionLog
from releasegate.store.scheduling_store import SchedulingStore

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def partition_event(i: int = 1, **overrides) -> dict:
    return {
        "event_id": f"evt-{i}",
        "event_type": "data.partition.arrived@v1",
        "occurred_at": "2026-11-23T07:00:00Z",
        "producer": "lake-loader",
        "idempotency_key": f"partition:positions:{i}",
        "payload": {"dataset": "positions", "business_date": "2026-11-20"},
    } | overrides


class FakePrefect:
    """Creates runs like Prefect's ``create_flow_run_from_deployment`` with an idempotency key."""

    def __init__(self, log: DecisionLog, fail_times: int = 0):
        self.log, self.fail_times = log, fail_times
        self.runs: dict[str, str] = {}  # prefect key -> run id
        self.calls: list[str] = []
        self.accepted_before_call: list[bool] = []

    def __call__(self, deployment: str, parameters: dict, key: str) -> str:
        self.calls.append(key)
        self.accepted_before_call.append(
            any(
                prefect_idempotency_key("backfill", r.details["idempotency_key"]) == key
                and r.decision_outcome.value == "accept"
                for r in event_records(self.log)
            )
        )
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("Prefect API unreachable")
        return self.runs.setdefault(key, f"run-{len(self.runs) + 1}")


def event_records(log: DecisionLog) -> list:
    return log.query(kind="event")


def intake(raw, store, log, create_run):
    return intake_event(raw, routes=DEFAULT_ROUTES, store=store, log=log, create_run=create_run, now=NOW)


# ------------------------------------------------------------------------- lengths (PostgreSQL)
@pytest.mark.postgres
def test_event_at_the_contracts_length_limits_is_accepted_and_recorded_on_postgres(pg_url):
    """producer (512) becomes actor "producer:<512>"; event_id 512 and idempotency_key 200 fill their columns."""
    log, store = DecisionLog(pg_url), SchedulingStore(pg_url)
    prefect = FakePrefect(log)
    raw = partition_event(producer="p" * 512, event_id="e" * 512, idempotency_key="k" * 200)
    result = intake(raw, store, log, prefect)
    assert result.status == "created" and result.flow_run_id == "run-1", result
    accepted, created = event_records(log)
    assert accepted.decision_id == result.decision_id and accepted.actor == "producer:" + "p" * 512
    assert accepted.details["status"] == "accepted" and accepted.details["event_id"] == "e" * 512
    assert created.details == {
        "event_id": "e" * 512,
        "event_type": "data.partition.arrived@v1",
        "idempotency_key": "k" * 200,
        "status": "created",
        "flow_run_id": "run-1",
        "accepted_decision_id": accepted.decision_id,
    }
    assert store.lookup("backfill", "k" * 200).flow_run_id == "run-1"
    assert intake(raw, store, log, prefect).status == "duplicate" and len(prefect.calls) == 1
    assert log.verify().ok


@pytest.mark.postgres
def test_refusal_of_an_overlong_producer_is_recorded_on_postgres(pg_url):
    """A refused event's raw producer is written as the actor: any length must fit."""
    log, store = DecisionLog(pg_url), SchedulingStore(pg_url)
    result = intake(partition_event(producer="p" * 5000), store, log, FakePrefect(log))
    assert result.status == "refused" and "producer" in result.reason
    [rec] = event_records(log)
    assert rec.decision_outcome.value == "reject" and rec.actor == "producer:" + "p" * 5000


# ------------------------------------------------------------------------ decision before run
def test_accept_decision_is_written_before_the_run_is_created(db_url):
    log, store = DecisionLog(db_url), SchedulingStore(db_url)
    prefect = FakePrefect(log)
    result = intake(partition_event(), store, log, prefect)
    assert result.status == "created" and prefect.accepted_before_call == [True]
    accepted, created = event_records(log)
    assert accepted.details["status"] == "accepted" and "flow_run_id" not in accepted.details
    assert accepted.details["parameters"] == {"start_date": "2026-11-20", "end_date": "2026-11-20"}
    assert accepted.details["prefect_idempotency_key"] == prefect_idempotency_key("backfill", "partition:positions:1")
    assert created.details["status"] == "created" and created.details["flow_run_id"] == result.flow_run_id
    assert result.decision_id == accepted.decision_id


def test_crash_in_create_run_is_completed_by_the_redelivery(db_url):
    log, store = DecisionLog(db_url), SchedulingStore(db_url)
    prefect = FakePrefect(log, fail_times=1)
    with pytest.raises(ConnectionError):
        intake(partition_event(), store, log, prefect)
    [accepted] = event_records(log)  # written before the attempt, kept: the claim is kept too
    assert accepted.details["status"] == "accepted" and prefect.runs == {}
    claim = store.lookup("backfill", "partition:positions:1")
    assert claim is not None and claim.flow_run_id is None

    again = intake(partition_event(i=1, event_id="redelivery-1"), store, log, prefect)
    assert again.status == "created" and again.flow_run_id == "run-1" and again.decision_id == accepted.decision_id
    assert len(prefect.runs) == 1 and prefect.accepted_before_call == [True, True]
    records = event_records(log)
    assert [r.details["status"] for r in records] == ["accepted", "created"]  # no second accept
    assert records[0].decision_id == accepted.decision_id and records[1].details["flow_run_id"] == "run-1"
    assert store.lookup("backfill", "partition:positions:1").flow_run_id == "run-1"
    # Now a plain duplicate: answered from the claim, without Prefect.
    dup = intake(partition_event(), store, log, prefect)
    assert dup.status == "duplicate" and dup.flow_run_id == "run-1" and len(prefect.calls) == 2
    assert log.verify().ok


class FlakySetFlowRun(SchedulingStore):
    """Fails once where the run id is stored: the run exists, the claim does not know it."""

    def __init__(self, url: str):
        super().__init__(url)
        self.failures = 1

    def set_flow_run(self, deployment: str, key: str, flow_run_id: str) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("crashed before the run id was stored")
        super().set_flow_run(deployment, key, flow_run_id)


def test_crash_after_create_run_before_the_run_id_is_stored(db_url):
    log, store = DecisionLog(db_url), FlakySetFlowRun(db_url)
    prefect = FakePrefect(log)
    with pytest.raises(OSError):
        intake(partition_event(), store, log, prefect)
    assert prefect.runs == {"backfill:partition:positions:1": "run-1"}
    assert store.lookup("backfill", "partition:positions:1").flow_run_id is None

    again = intake(partition_event(event_id="redelivery-1"), store, log, prefect)
    assert again.flow_run_id == "run-1" and again.status == "duplicate"  # the first delivery recorded the run
    assert len(prefect.runs) == 1 and prefect.calls == ["backfill:partition:positions:1"] * 2
    assert [r.details["status"] for r in event_records(log)] == ["accepted", "created"]
    assert store.lookup("backfill", "partition:positions:1").flow_run_id == "run-1"
    assert intake(partition_event(), store, log, prefect).flow_run_id == "run-1" and len(prefect.calls) == 2
    assert log.verify().ok


# ------------------------------------------------------------------------------- webhook body
SECRET = "body-limit-secret"


def signed(body: str, delivery_id: str) -> dict:
    stamp = str(int(datetime.now(UTC).timestamp()))
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign(SECRET, delivery_id, stamp, body),
    }


def _recorded(url: str) -> tuple[int, int]:
    log = DecisionLog(url)
    with log.engine.connect() as conn:
        deliveries = conn.execute(text("SELECT count(*) FROM webhook_deliveries")).scalar_one()
    return deliveries, log.count()


def test_webhook_refuses_a_body_over_the_limit_before_reading_it_all(rg_home):
    from releasegate import bootstrap
    from releasegate.adapters.webhook_app import create_app

    client = TestClient(create_app(bootstrap.app, secret=SECRET))
    url = bootstrap.settings().resolved_database_url
    big = json.dumps({"entity": "model_version", "action": "created", "data": {"pad": "x" * (2 * 1024 * 1024)}})
    assert len(big) > 1024 * 1024  # MAX_BODY_BYTES
    declared = client.post("/webhooks/mlflow", content=big, headers=signed(big, "big-1"))
    assert declared.status_code == 413 and "exceeds" in declared.json()["error"]

    # No Content-Length (chunked): counted while streaming, refused once the limit is passed.
    chunks = [big[i : i + 64 * 1024].encode() for i in range(0, len(big), 64 * 1024)]
    streamed = client.post("/webhooks/mlflow", content=iter(chunks), headers=signed(big, "big-2"))
    assert streamed.status_code == 413

    assert _recorded(url) == (0, 0)  # nothing claimed, nothing logged

    # A normal signed delivery still goes through (a registry name releasegate does not act on).
    body = json.dumps({"entity": "model_version", "action": "created", "data": {"name": "other.m", "version": "1"}})
    ok = client.post("/webhooks/mlflow", content=body, headers=signed(body, "ok-1"))
    assert ok.status_code == 202 and ok.json()["status"] == "ignored"
    assert _recorded(url) == (1, 0)

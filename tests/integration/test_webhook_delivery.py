"""Webhook deliveries survive a crash and bad sizes never reach the database (real SQLite and PostgreSQL).

A receiver killed between claiming a delivery id and recording intake's answer left the id claimed for
good: MLflow's retries were answered 409 "replay" and the delivery was lost. A claim now has an owner
and a lease; a redelivery of a stale claim processes it again, exactly once. A signed delivery whose id
or names do not fit (too long, a NUL byte) is answered 400 before anything is written - on PostgreSQL it
was a DataError, a 500.
"""

import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from releasegate.policy.webhooks import sign
from releasegate.store.decision_log import DecisionLog
from releasegate.store.scheduling_store import DELIVERY_LEASE, RegistryEventStore

SECRET = "delivery-secret"


@pytest.fixture
def receiver(rg_home, db_url, monkeypatch):
    """The receiver on the wall clock (whatever clock an earlier test left set): deliveries are stamped
    with it and their claims' leases run on it."""
    from releasegate import bootstrap
    from releasegate.adapters.webhook_app import create_app
    from releasegate.bootstrap import use_clock
    from releasegate.clock import SystemClock

    monkeypatch.setenv("RELEASEGATE_DATABASE_URL", db_url)
    with use_clock(SystemClock()):
        yield TestClient(create_app(bootstrap.app, secret=SECRET), raise_server_exceptions=False), db_url


def post(client: TestClient, delivery_id: str, name: str = "staging.credit", version="7", **extra):
    body = json.dumps({"entity": "model_version", "action": "created", "data": {"name": name, "version": version}})
    if extra:
        data = {"name": name, "version": version, **extra}
        body = json.dumps({"entity": "model_version_alias", "action": "created", "data": data})
    stamp = str(int(datetime.now(UTC).timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign(SECRET, delivery_id, stamp, body),
    }
    return client.post("/webhooks/mlflow", content=body, headers=headers)


def recorded(url: str) -> tuple[int, int]:
    """(deliveries stored, times intake answered one): decisions recorded plus unrouted registrations
    ignored (counted by intake, not recorded as decisions)."""
    from releasegate.services.intake import ignored_counts

    log = DecisionLog(url)
    with log.engine.connect() as conn:
        deliveries = conn.execute(text("SELECT count(*) FROM webhook_deliveries")).scalar_one()
    return deliveries, log.count() + sum(ignored_counts().values()) - _IGNORED_BEFORE[0]


_IGNORED_BEFORE = [0]


@pytest.fixture(autouse=True)
def _ignored_baseline():
    from releasegate.services.intake import ignored_counts

    _IGNORED_BEFORE[0] = sum(ignored_counts().values())


# --------------------------------------------------------------------------------- crash recovery
def test_a_delivery_claimed_but_not_finished_is_processed_again_on_redelivery_exactly_once(receiver):
    """``staging.credit`` v7 created: intake records that no route acts on it (one decision, no Prefect)."""
    client, url = receiver
    store = RegistryEventStore(url)
    now = datetime.now(UTC)
    # The receiver died after claiming the delivery, before intake and before recording its answer.
    crashed = store.claim_delivery("dlv-1", now - DELIVERY_LEASE - timedelta(seconds=1))
    assert crashed.state == "claimed" and recorded(url) == (1, 0)

    retry = post(client, "dlv-1")  # MLflow's retry of the same delivery
    assert retry.status_code == 202, retry.text  # processed, not "replay"
    assert retry.json()["status"] == "ignored" and "no route" in retry.json()["reason"]
    assert recorded(url) == (1, 1)
    assert store.delivery("dlv-1").status == "ignored"

    again = post(client, "dlv-1")  # finished: now it is a replay, and nothing more is written
    assert again.status_code == 409 and "replay" in again.json()["error"]
    assert recorded(url) == (1, 1)
    # the crashed receiver's late answer does not overwrite the finished one
    assert store.finish_delivery("dlv-1", crashed.owner, "created") is False
    assert store.delivery("dlv-1").status == "ignored"


def test_a_fresh_claim_is_answered_503_with_retry_after_and_one_caller_takes_a_stale_one(receiver):
    client, url = receiver
    store = RegistryEventStore(url)
    now = datetime.now(UTC)
    working = store.claim_delivery("dlv-2", now)  # another request is processing it right now
    busy = post(client, "dlv-2")
    assert busy.status_code == 503 and 1 <= int(busy.headers["Retry-After"]) <= DELIVERY_LEASE.total_seconds()
    assert recorded(url) == (1, 0)  # nothing processed twice
    assert store.finish_delivery("dlv-2", working.owner, "ignored") is True
    assert post(client, "dlv-2").status_code == 409

    store.claim_delivery("dlv-3", now - 2 * DELIVERY_LEASE)  # left by a dead receiver
    later = now + timedelta(seconds=1)
    first, second = store.claim_delivery("dlv-3", later), store.claim_delivery("dlv-3", later)
    assert (first.state, first.taken_over) == ("claimed", True) and second.state == "in_progress"
    store.release_delivery("dlv-3", first.owner)  # intake failed inside releasegate: free at once
    assert store.claim_delivery("dlv-3", later).state == "claimed"


# ------------------------------------------------------------------------ sizes (PostgreSQL too)
@pytest.mark.parametrize(
    "delivery_id, name, extra, field",
    [
        (secrets.token_hex(4500), "other.credit", {}, "X-MLflow-Delivery-Id"),  # a 500 on PostgreSQL
        ("d" * 201, "staging.credit", {}, "X-MLflow-Delivery-Id"),  # a recorded 422 before
        ("dlv-nul", "staging.cr\x00edit", {"alias": "staging", "version": "1"}, "data.name"),  # DataError
        ("dlv-long", "staging." + "c" * 600, {}, "data.name"),  # a recorded 422 before
        ("dlv-ver", "staging.credit", {"alias": "staging", "version": "1" * 30}, "data.version"),
        ("dlv-alias", "staging.credit", {"alias": "stag\x00ing", "version": "1"}, "data.alias"),
    ],
)
def test_a_signed_delivery_that_does_not_fit_is_refused_400_before_any_write(receiver, delivery_id, name, extra, field):
    client, url = receiver
    r = post(client, delivery_id, name, **extra)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(field)
    assert recorded(url) == (0, 0)  # no claim, no decision
    assert post(client, "dlv-ok", "other.credit").status_code == 202  # the receiver still works

"""The retrain gateway's table, case by case, and MLflow webhook verification/mapping (pure)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from releasegate.policy.retrain import RetrainPolicy, RetrainSignals, RetrainTrigger, retrain_gateway
from releasegate.policy.webhooks import WebhookRejected, sign, to_event, verify

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
P = RetrainPolicy()


def decide(trigger="drift", psi=0.05, drop=0.0, age=3.0, champion=True, env=None):
    s = RetrainSignals(
        trigger=RetrainTrigger(trigger),
        has_champion=champion,
        psi={"a": 0.01, "b": psi},
        kpi_drop=drop,
        days_since_refit=age,
        source_environment=env,
    )
    return retrain_gateway(s, P, NOW)


@pytest.mark.parametrize(
    ("kw", "outcome", "code"),
    [
        ({"psi": 0.35}, "retrain", "DRIFT_URGENT"),
        ({"psi": 0.30}, "defer", "RETRAIN_PLANNED"),  # exactly 0.3: plan (urgent is > 0.3, as in the tree)
        ({"psi": 0.25}, "defer", "RETRAIN_PLANNED"),
        ({"psi": 0.20}, "defer", "RETRAIN_PLANNED"),
        ({"psi": 0.19}, "no_retrain", "WITHIN_LIMITS"),
        ({"drop": 0.12}, "retrain", "KPI_DROP_URGENT"),
        ({"drop": 0.10}, "defer", "RETRAIN_PLANNED"),  # exactly 10 %: plan, not urgent (> 10 %)
        ({"drop": 0.07}, "defer", "RETRAIN_PLANNED"),
        ({"drop": 0.05}, "defer", "RETRAIN_PLANNED"),
        ({"drop": 0.04}, "no_retrain", "WITHIN_LIMITS"),
        ({"age": 31, "trigger": "periodic"}, "retrain", "PERIODIC_REFIT"),
        ({"age": 29, "trigger": "periodic"}, "no_retrain", "WITHIN_LIMITS"),
        ({"champion": False}, "retrain", "NO_CHAMPION"),
        ({"trigger": "registry_event", "env": "dev"}, "retrain", "NEW_DEV_VERSION"),
        ({"trigger": "registry_event", "env": "staging"}, "no_retrain", "SELF_EVENT"),
        ({"trigger": "registry_event", "env": "staging", "psi": 0.5}, "no_retrain", "SELF_EVENT"),
        ({"trigger": "manual"}, "retrain", "MANUAL"),
        ({"psi": 0.35, "drop": 0.2}, "retrain", "DRIFT_URGENT"),
    ],
)
def test_gateway_table(kw, outcome, code):
    d = decide(**kw)
    assert (d.outcome, d.reason_code) == (outcome, code), d.reason
    if outcome == "defer":
        assert d.next_evaluation_at == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # next 02:00 UTC
    else:
        assert d.next_evaluation_at is None


SECRET = "s3cret"


def signed(body: dict | str, delivery="d-1", ts: datetime = NOW, secret=SECRET):
    text = body if isinstance(body, str) else json.dumps(body)
    stamp = str(int(ts.timestamp()))
    return {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign(secret, delivery, stamp, text),
    }, text.encode()


CREATED = {
    "entity": "model_version",
    "action": "created",
    "timestamp": "2026-11-23T15:00:00+00:00",
    "data": {"name": "dev.credit", "version": "4", "source": "models:/m-1", "run_id": "r", "tags": {}},
}


def test_valid_delivery_maps_to_the_event_contract():
    headers, body = signed(CREATED)
    assert verify(SECRET, headers, body, NOW) == "d-1"
    ev = to_event(body, "d-1", NOW)
    assert ev["event_type"] == "registry.model_version.created@v1"
    assert ev["payload"] == {"model_name": "credit", "version": "4", "source_environment": "dev"}
    assert ev["idempotency_key"] == "model-version:dev.credit:4"


def test_staging_alias_maps_to_staging_validated():
    body = {
        "entity": "model_version_alias",
        "action": "created",
        "data": {"name": "staging.credit", "alias": "staging", "version": "7"},
    }
    ev = to_event(json.dumps(body).encode(), "d", NOW)
    assert (
        ev["event_type"] == "registry.staging_version.validated@v1"
        and ev["idempotency_key"] == "staging-validated:credit:7"
    )
    other = {**body, "data": {**body["data"], "alias": "champion"}}
    assert to_event(json.dumps(other).encode(), "d", NOW) is None
    assert to_event(json.dumps({**CREATED, "data": {**CREATED["data"], "name": "credit"}}).encode(), "d", NOW) is None


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (
            lambda h, b: (h | {"X-MLflow-Signature": sign("wrong", "d-1", h["X-MLflow-Timestamp"], b.decode())}, b),
            "does not match",
        ),
        (lambda h, b: (h, b.replace(b'"4"', b'"5"')), "does not match"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "X-MLflow-Signature"}, b), "required"),
        (lambda h, b: (h | {"X-MLflow-Signature": "v2,abc"}, b), "unsupported version"),
        (lambda h, b: (h | {"X-MLflow-Timestamp": "yesterday"}, b), "not a unix timestamp"),
    ],
)
def test_bad_signatures_are_401(mutate, words):
    headers, body = mutate(*signed(CREATED))
    with pytest.raises(WebhookRejected) as ei:
        verify(SECRET, headers, body, NOW)
    assert ei.value.status == 401 and words in ei.value.reason


def test_old_or_future_timestamps_are_401():
    for skew in (timedelta(minutes=6), -timedelta(minutes=6)):
        headers, body = signed(CREATED, ts=NOW - skew)
        with pytest.raises(WebhookRejected, match="tolerance"):
            verify(SECRET, headers, body, NOW)
    headers, body = signed(CREATED, ts=NOW - timedelta(minutes=4))
    assert verify(SECRET, headers, body, NOW)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps([1, 2]),
        json.dumps({"entity": "model_version"}),
        json.dumps({"entity": "model_version", "action": "created", "data": {"name": 3}}),
    ],
)
def test_malformed_bodies_are_400(body):
    with pytest.raises(WebhookRejected) as ei:
        to_event(body.encode(), "d", NOW)
    assert ei.value.status == 400

"""MLflow webhook deliveries: signature, freshness, and mapping to releasegate's event contract (pure).

MLflow 3 signs each delivery: header ``X-MLflow-Signature: v1,<base64 HMAC-SHA256>`` over
``"<X-MLflow-Delivery-Id>.<X-MLflow-Timestamp>.<raw body>"`` with the webhook's secret. A delivery is
accepted only with a valid signature and a timestamp within ``tolerance`` of now (else 401); a delivery
id seen before is a replay (409, answered by the receiver, which keeps the ids).

Sizes and characters are checked before anything is written (400): a delivery id of at most
``MAX_DELIVERY_ID_CHARS`` printable ASCII characters (MLflow sends a UUID), a registered model name of at
most ``MAX_NAME_CHARS`` and a version of at most ``MAX_VERSION_CHARS`` characters, none of them with a
control character (PostgreSQL refuses a NUL byte in a text column; the event contract's idempotency key
holds 200 characters).

Mapping (``to_event``):

* ``model_version.created`` on ``<env>.<model>`` → ``registry.model_version.created@v1``
  (model_name, version, source_environment), idempotency key ``model-version:<env>.<model>:<v>``;
* ``model_version_alias.created`` with alias ``staging`` on ``staging.<model>`` →
  ``registry.staging_version.validated@v1``, key ``staging-validated:<model>:<v>``.

The keys come from model and version, so the webhook and the registry watcher produce the same key for
the same fact and event intake answers the second one as a duplicate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from releasegate.errors import ReleasegateError

TOLERANCE = timedelta(minutes=5)
ENVIRONMENTS = ("dev", "staging", "prod")
MAX_DELIVERY_ID_CHARS = 200
MAX_NAME_CHARS = 150  # "staging-validated:<model>:<version>" stays within the contract's 200
MAX_VERSION_CHARS = 20
_PRINTABLE_ASCII = re.compile(r"^[\x21-\x7e]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class WebhookRejected(ReleasegateError):
    def __init__(self, status: int, reason: str):
        self.status, self.reason = status, reason
        super().__init__(f"{status}: {reason}")


def sign(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, now: datetime, tolerance: timedelta = TOLERANCE) -> str:
    """Return the delivery id of a correctly signed, fresh delivery; raise ``WebhookRejected`` (401)."""
    h = {k.lower(): v for k, v in headers.items()}
    delivery_id = h.get("x-mlflow-delivery-id", "")
    timestamp = h.get("x-mlflow-timestamp", "")
    signature = h.get("x-mlflow-signature", "")
    if not delivery_id or not timestamp or not signature:
        raise WebhookRejected(401, "X-MLflow-Delivery-Id, X-MLflow-Timestamp and X-MLflow-Signature are required")
    if not signature.startswith("v1,"):
        raise WebhookRejected(401, "X-MLflow-Signature: unsupported version (expected v1,<base64>)")
    try:
        sent = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        raise WebhookRejected(401, "X-MLflow-Timestamp: not a unix timestamp") from None
    if abs(now - sent) > tolerance:
        raise WebhookRejected(
            401,
            f"X-MLflow-Timestamp: {int((now - sent).total_seconds())} s off, outside the "
            f"{int(tolerance.total_seconds())} s tolerance",
        )
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise WebhookRejected(401, "body: not UTF-8") from None
    if not hmac.compare_digest(sign(secret, delivery_id, timestamp, text), signature):
        raise WebhookRejected(401, "X-MLflow-Signature: does not match the body (wrong secret or altered body)")
    if len(delivery_id) > MAX_DELIVERY_ID_CHARS or not _PRINTABLE_ASCII.match(delivery_id):
        raise WebhookRejected(
            400,
            f"X-MLflow-Delivery-Id: at most {MAX_DELIVERY_ID_CHARS} printable ASCII characters without "
            f"spaces (got {len(delivery_id)} characters)",
        )
    return delivery_id


def _bounded(field: str, value: str, limit: int) -> str:
    """``value`` when it fits a column and the event contract, else ``WebhookRejected(400)`` naming it."""
    if len(value) > limit:
        raise WebhookRejected(400, f"{field}: at most {limit} characters (got {len(value)})")
    if _CONTROL.search(value):
        raise WebhookRejected(400, f"{field}: contains a control character (a NUL byte, say)")
    return value


def split_name(name: str, environments: Sequence[str] = ENVIRONMENTS) -> tuple[str, str] | None:
    """``<env>.<model>`` -> (env, model) when ``env`` is one of ``environments`` (RELEASEGATE_ENVIRONMENTS)."""
    env, _, model = name.partition(".")
    return (env, model) if env in environments and model else None


def to_event(
    body: bytes, delivery_id: str, now: datetime, environments: Sequence[str] = ENVIRONMENTS
) -> dict[str, Any] | None:
    """The event-contract dict for a delivery, or None for deliveries releasegate does not act on
    (a registered model outside ``environments``, an action that is not a new version or a staging alias).

    Raises ``WebhookRejected(400)`` for a body that is not the MLflow webhook shape."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WebhookRejected(400, "body: not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        raise WebhookRejected(400, "body: expected an object with entity, action and data")
    entity, action, data = doc.get("entity"), doc.get("action"), doc["data"]
    name, version = data.get("name"), data.get("version")
    if not isinstance(name, str) or version is None or isinstance(version, (dict, list)):
        raise WebhookRejected(400, "data.name and data.version are required")
    _bounded("data.name", name, MAX_NAME_CHARS)
    _bounded("data.version", str(version), MAX_VERSION_CHARS)
    if isinstance(data.get("alias"), str):
        _bounded("data.alias", data["alias"], MAX_NAME_CHARS)
    parts = split_name(name, environments)
    if parts is None:
        return None
    env, model = parts
    occurred = doc.get("timestamp") or now.isoformat()
    if isinstance(occurred, str):
        _bounded("timestamp", occurred, 64)
    if entity == "model_version" and action == "created":
        return {
            "event_id": f"mlflow-delivery:{delivery_id}",
            "event_type": "registry.model_version.created@v1",
            "occurred_at": occurred,
            "producer": "mlflow-webhook",
            "idempotency_key": f"model-version:{name}:{version}",
            "payload": {"model_name": model, "version": str(version), "source_environment": env},
        }
    if entity == "model_version_alias" and action == "created" and data.get("alias") == "staging" and env == "staging":
        return {
            "event_id": f"mlflow-delivery:{delivery_id}",
            "event_type": "registry.staging_version.validated@v1",
            "occurred_at": occurred,
            "producer": "mlflow-webhook",
            "idempotency_key": f"staging-validated:{model}:{version}",
            "payload": {"model_name": model, "version": str(version)},
        }
    return None

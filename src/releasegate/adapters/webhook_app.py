"""``releasegate webhook serve``: receives MLflow webhooks at ``POST /webhooks/mlflow``.

| answer | when |
|---|---|
| 201 created / 200 duplicate / 202 ignored | a valid delivery, handed to event intake |
| 400 | signed, but not an MLflow webhook payload, or an id, name or version too long or with a NUL |
| 401 | missing or wrong signature, or a timestamp outside the tolerance |
| 409 | a delivery id processed before (replay) |
| 503 + Retry-After | a delivery id another request is processing right now (its claim's lease, 30 s) |
| 413 | a body over ``MAX_BODY_BYTES`` (1 MiB), before the signature is checked; nothing is recorded |
| 422 | the event contract refused the mapped event (recorded) |
| 503 | no secret configured (``RELEASEGATE_WEBHOOK_SECRET``) |

The secret is the one given to ``MlflowClient.create_webhook(secret=…)``. The body is read before the
signature can be checked, so its size is bounded first: a Content-Length over ``MAX_BODY_BYTES`` is
answered 413 without reading, and without one (chunked) or with a lying one the stream is counted and
refused (413) as soon as it passes the limit. An unauthenticated sender cannot make the receiver buffer
more than 1 MiB (MLflow's payloads are a few hundred bytes).

A delivery id is claimed before intake and finished after it. A receiver killed in between leaves the
claim unfinished; MLflow's retry of that delivery, once the claim's lease (30 s, MLflow's own request
timeout) has run out, takes it over and processes it again - intake is idempotent per event, so the
event counts once - instead of answering "replay".
"""

from __future__ import annotations

import os
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from releasegate.app import App
from releasegate.errors import ReleasegateError
from releasegate.policy.webhooks import TOLERANCE, WebhookRejected, to_event, verify
from releasegate.store.scheduling_store import RegistryEventStore

STATUS = {"created": 201, "duplicate": 200, "ignored": 202, "refused": 422}
MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(ReleasegateError):
    """A webhook body over the size limit (answered 413)."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, or ``BodyTooLarge`` as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge(f"Content-Length {declared} exceeds {limit} bytes")
        except ValueError:
            pass  # not a number: the stream is counted below
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(new_app: Callable[[], App], secret: str | None = None, tolerance=TOLERANCE) -> Starlette:
    """The receiver; ``new_app`` (the composition root's ``app``) gives each delivery the process's collaborators."""
    environments = tuple(new_app().settings.environments)  # RELEASEGATE_ENVIRONMENTS

    async def mlflow_webhook(request: Request) -> JSONResponse:
        key = secret or os.environ.get("RELEASEGATE_WEBHOOK_SECRET")
        if not key:
            return JSONResponse({"error": "RELEASEGATE_WEBHOOK_SECRET is not set"}, status_code=503)
        try:
            body = await read_body(request)
        except BodyTooLarge as exc:
            return JSONResponse({"error": str(exc)}, status_code=413)
        app = new_app()
        now = app.clock.now()
        try:
            delivery_id = verify(key, dict(request.headers), body, now, tolerance)
            event = to_event(body, delivery_id, now, environments)
        except WebhookRejected as exc:
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        store = RegistryEventStore(app.settings.resolved_database_url)
        claim = await run_in_threadpool(store.claim_delivery, delivery_id, now)
        if claim.state == "finished":
            return JSONResponse({"error": f"delivery {delivery_id} was already received (replay)"}, status_code=409)
        if claim.state == "in_progress":  # MLflow retries a 503 after Retry-After: by then it is ours or done
            return JSONResponse(
                {"error": f"delivery {delivery_id} is being processed; retry in {claim.retry_after} s"},
                status_code=503,
                headers={"Retry-After": str(claim.retry_after)},
            )
        assert claim.owner is not None  # claimed
        if event is None:
            await run_in_threadpool(store.finish_delivery, delivery_id, claim.owner, "ignored")
            return JSONResponse({"status": "ignored", "reason": "not an event releasegate acts on"}, status_code=202)
        from releasegate.adapters.prefect_runs import send_event

        try:
            result = await run_in_threadpool(send_event, app, event)
        except Exception as exc:  # let MLflow's retry through: this delivery id was not processed
            await run_in_threadpool(store.release_delivery, delivery_id, claim.owner)
            return JSONResponse({"error": f"intake failed: {type(exc).__name__}: {exc}"}, status_code=500)
        await run_in_threadpool(store.finish_delivery, delivery_id, claim.owner, result.status)
        return JSONResponse(result.as_dict(), status_code=STATUS[result.status])

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/webhooks/mlflow", mlflow_webhook, methods=["POST"]), Route("/healthz", health, methods=["GET"])]
    )

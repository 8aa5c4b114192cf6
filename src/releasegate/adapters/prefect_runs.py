"""Event intake wired to Prefect: ``send_event`` validates, dedupes and creates the run."""

from __future__ import annotations

import threading
from typing import Any

from prefect import get_client

from releasegate.adapters.config import load_routes
from releasegate.app import App
from releasegate.errors import NotFound
from releasegate.services.intake import IntakeResult, intake_event

_local = threading.local()
_deployment_ids: dict[str, Any] = {}
_ids_lock = threading.Lock()


def _client():
    client = getattr(_local, "client", None)
    if client is None:
        client = get_client(sync_client=True)
        client.__enter__()
        _local.client = client
    return client


def deployment_id(deployment: str):
    """Flows are named after their deployment, so the full name is ``<deployment>/<deployment>``."""
    with _ids_lock:
        if deployment in _deployment_ids:
            return _deployment_ids[deployment]
    dep = _client().read_deployment_by_name(f"{deployment}/{deployment}")
    with _ids_lock:
        _deployment_ids[deployment] = dep.id
    return dep.id


class DeploymentMissing(NotFound):
    """The routed deployment is not deployed on the Prefect API this process talks to."""

    def __init__(self, deployment: str, api: str):
        self.deployment, self.api = deployment, api
        super().__init__(
            f"deployment {deployment!r} is not deployed on the Prefect API {api}: run `releasegate deploy "
            f"--name {deployment}` (or `make up` for the local stack) and send the event again; nothing was recorded"
        )


def ensure_deployment(deployment: str) -> None:
    from prefect.exceptions import ObjectNotFound

    try:
        deployment_id(deployment)
    except ObjectNotFound:
        raise DeploymentMissing(deployment, str(_client().api_url)) from None


def deployment_exists(full_name: str) -> bool:
    """Whether ``flow-name/deployment-name`` is deployed on the Prefect API this process talks to."""
    from prefect.exceptions import ObjectNotFound

    try:
        _client().read_deployment_by_name(full_name)
    except ObjectNotFound:
        return False
    return True


def api_url() -> str:
    return str(_client().api_url)


def prefect_create_run(deployment: str, parameters: dict[str, Any], idempotency_key: str) -> str:
    run = _client().create_flow_run_from_deployment(
        deployment_id(deployment),
        parameters=parameters,
        idempotency_key=idempotency_key,
        tags=["releasegate", "event"],
    )
    return str(run.id)


def prefect_emit(name: str, payload: dict[str, Any]) -> None:
    from prefect.events import emit_event

    model = payload.get("model_name")
    resource = {
        "prefect.resource.id": f"releasegate.model.{model}" if model else f"releasegate.event.{name}",
        "releasegate.deployment": str(payload.get("deployment")),
    }
    emit_event(event=name, resource=resource, payload=payload)


def send_event(app: App, raw: Any) -> IntakeResult:
    return intake_event(
        raw,
        routes=load_routes(),
        store=app.store,
        log=app.log,
        create_run=prefect_create_run,
        now=app.clock.now(),
        emit=prefect_emit,
        ensure_deployment=ensure_deployment,
    )


def forget_deployment_ids() -> None:
    with _ids_lock:
        _deployment_ids.clear()

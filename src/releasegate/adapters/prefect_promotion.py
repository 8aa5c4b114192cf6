"""Prefect behind the promotion's ports (``releasegate.promotion_ports``), for the run in progress.

- ``Approvals``: ``pause_flow_run(wait_for_input=ApprovalInput…)``, a fresh pause key each time
  (``<role>-approval-<hex>``, which ``adapters.prefect_manual`` recognises); the Prefect UI shows the
  form, ``releasegate approve`` resumes the run from a terminal.
- ``Locks``: the global concurrency limits ``promotion-<model>`` and ``aliases-<model>``, and the
  deployment's work slot (``adapters.prefect_locks``).
- ``Artifacts``: markdown artifacts of the promotion run; ``Events``: ``emit_event`` about the run;
  ``ReleaseWindow``: the capacity gateway (``adapters.prefect_gate.gate_current_run``).
- ``Checks``: the ``build-dossier`` and ``execute-gates`` subflows, passed in by the flow module.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal

from prefect import get_run_logger, pause_flow_run
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field

from releasegate.adapters.prefect_gate import gate_current_run
from releasegate.adapters.prefect_locks import ensure_alias_lock, ensure_model_lock, hold, work_slot
from releasegate.app import App
from releasegate.clock import Clock
from releasegate.policy.handshake import ApprovalFields, Handshake, Role
from releasegate.promotion_ports import ApprovalForm, Notifications, PromotionPorts, PromotionRecords
from releasegate.slugs import artifact_key


class ApprovalInput(RunInput, ApprovalFields):
    """The approval form shown in the Prefect UI: paste the signed token (the other fields may stay
    empty: the token states them)."""

    role: Literal["pm", "risk", "compliance"] = "pm"
    token: str = Field(
        default="",
        description="Signed approval token: `releasegate approve RUN --role ROLE --by YOU --ref REF --token-only`.",
    )


class PrefectApprovals:
    def __init__(self, run_id: str, poll_seconds: int) -> None:
        self.run_id, self.poll_seconds = run_id, poll_seconds

    def ask(self, role: Role, h: Handshake, timeout_s: int) -> ApprovalForm:
        received = pause_flow_run(
            wait_for_input=ApprovalInput.with_initial_data(
                description=f"**{role.value.upper()}_GATE_PASS** for {h.model} v{h.candidate_version} "
                f"(requested by {h.requested_by}). {report_links(self.run_id, h.model)}",
                role=role.value,
                approver="",
                reference="",
            ),
            timeout=timeout_s,
            poll_interval=self.poll_seconds,
            key=f"{role.value}-approval-{uuid.uuid4().hex}",  # a fresh pause each time we ask
        )
        fields = received.model_dump(include=set(ApprovalFields.model_fields) | {"role"})
        return ApprovalForm(fields=fields, token=received.token)


def report_links(run_id: str, model_name: str) -> str:
    """Where the approver reads the gate report and the dossier: this run's Artifacts tab in the UI."""
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    keys = f"`{artifact_key('gate-report', model_name)}` and `{artifact_key('dossier', model_name)}`"
    base = PREFECT_UI_URL.value() or (str(PREFECT_API_URL.value() or "").removesuffix("/api") or None)
    if not base:
        return f"Read the gate report and the dossier ({keys}) in this run's Artifacts tab."
    url = f"{str(base).rstrip('/')}/runs/flow-run/{run_id}?tab=Artifacts"
    return f"Read the [gate report and the dossier]({url}) ({keys}) before you approve."


class PrefectLocks:
    def __init__(self, deployment: str, policy: Any) -> None:
        self.deployment, self.policy = deployment, policy

    def model(self, model: str) -> AbstractContextManager[Any]:
        return hold(ensure_model_lock(model))

    def aliases(self, model: str) -> AbstractContextManager[Any]:
        return hold(ensure_alias_lock(model))

    def work(self) -> AbstractContextManager[Any]:
        """A slot of the deployment's concurrency limit around the dossier and gates, and around the
        release; none while the run waits for approvals. The limit is declared in ``runtime_policy``
        (prefect.yaml), not as Prefect's deployment key: Prefect 3.8 revokes a deployment slot's lease
        when the run pauses, then cancels the paused run at the engine's next lease renewal, within
        225 s of its start."""
        if self.policy.concurrency_by != "releasegate":
            return nullcontext()
        return work_slot(self.deployment, self.policy, enqueue=True)


class PrefectArtifacts:
    def markdown(self, key: str, markdown: str, description: str) -> str:
        return str(create_markdown_artifact(markdown=markdown, key=key, description=description))


class PrefectEvents:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def emit(self, event: str, model: str, payload: dict[str, Any]) -> None:
        emit_event(
            event=event,
            resource={"prefect.resource.id": f"prefect.flow-run.{self.run_id}", "releasegate.model": model},
            payload=payload,
        )


class PrefectReleaseWindow:
    def __init__(self, app: App, deployment: str) -> None:
        self.app = app
        self.deployment = deployment

    def admit(self) -> None:
        gate_current_run(self.app, self.deployment)


class Subflows:
    """``Checks`` as the flow module's two subflows (child runs of the promotion in the UI)."""

    def __init__(
        self,
        dossier: Callable[[str, str, str], dict[str, Any]],
        gates: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        self._dossier, self._gates = dossier, gates

    def dossier(self, model: str, version: str, requested_by: str) -> dict[str, Any]:
        return self._dossier(model, version, requested_by)

    def gates(self, dossier: dict[str, Any]) -> dict[str, Any]:
        return self._gates(dossier)


def promotion_ports(
    *,
    app: App,
    deployment: str,
    policy: Any,
    checks: Subflows,
    records: PromotionRecords,
    clock: Clock,
    poll_seconds: int,
    cooldown_seconds: int,
    config_errors: tuple[type[Exception], ...] = (),
    notifications: Notifications | None = None,
) -> PromotionPorts:
    """The ports of the promotion run in progress (call inside the flow)."""
    run_id = str(flow_run.id)
    return PromotionPorts(
        run_id=run_id,
        approvals=PrefectApprovals(run_id, poll_seconds),
        locks=PrefectLocks(deployment, policy),
        artifacts=PrefectArtifacts(),
        events=PrefectEvents(run_id),
        window=PrefectReleaseWindow(app, deployment),
        checks=checks,
        records=records,
        clock=clock,
        sleep=time.sleep,
        logger=get_run_logger(),
        approval_cooldown_seconds=cooldown_seconds,
        config_errors=config_errors,
        notifications=notifications,
    )

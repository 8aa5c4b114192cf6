"""``governed_flow``: a Prefect flow whose runtime policy comes from its deployment in prefect.yaml.

Prefect deployments carry a concurrency limit but no retries, timeout or late-run rule, and a flow's
retries and timeout are fixed when the flow object is built. So the decorator reads the deployment's
``runtime_policy`` (see ``releasegate.policy.runtime_policy``) when the flow module is loaded, by the worker
or by a test, and builds the flow with those retries, retry delay and timeout. At the start of each run
it applies the late-run rule: a run later than the policy allows ends Cancelled with the reason
``LATE_RUN_SKIPPED`` and a ``late_run`` decision record; then the schedule rules (DST, one run per cron
occurrence, catch-up: ``adapters.prefect_schedule``). Lateness counts from when the run was due: for
a deferred run, the last ``next_evaluation_at`` the gateway gave it (``_due_at``).

Before all that, a run of a halted model (its ``model_name``; ``services.halt``) ends Cancelled
(``Halted``) with a ``refusal`` record: scheduled EOD, retrain, promotion and rollback alike.

A governed flow that fails *raises*; it does not return a ``Failed`` state. With retries, Prefect 3.8's
engine retries a raised exception in the same process, but a returned ``Failed`` becomes
``AwaitingRetry`` and the engine run by a worker then stops on ``UnfinishedRun``, so the worker
reports the run as Crashed and the retry never happens (seen on the ``make up`` stack).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Cancelled, Failed

from releasegate import records
from releasegate.app import App
from releasegate.decisions import DecisionOutcome
from releasegate.policy.runtime_policy import (
    cron_schedules,
    find_deployment,
    late_run_verdict,
    load_prefect_yaml,
    policy_from_deployment,
)


def load_deployment_flow(deployment: str, project: Path):
    """The flow object of ``deployment``, loaded from its ``entrypoint`` in the project's prefect.yaml
    (what a worker does), so that the CLI and the demo run from an installed package without putting
    the checkout on the import path."""
    from prefect.flows import load_flow_from_entrypoint

    dep = find_deployment(load_prefect_yaml(project / "prefect.yaml"), deployment)
    path, _, name = str(dep["entrypoint"]).rpartition(":")
    return load_flow_from_entrypoint(f"{project / path}:{name}", use_placeholder_flow=False)


def _scheduled_start():
    from prefect.runtime import flow_run

    try:
        return flow_run.scheduled_start_time
    except Exception:  # outside a run context
        return None


def _due_at(app: App, run_id: str):
    """When the run was due: its scheduled start, or, for a run the gateway deferred, the time the
    gateway told it to come back (Prefect keeps ``expected_start_time`` at the first schedule when a
    run is rescheduled, so a run deferred by a 12-day freeze would otherwise be "12 days late" when the
    freeze ends and be skipped by its own deferral). An overridden deferral is due at the override."""
    scheduled = _scheduled_start()
    deferral = app.store.get_deferral(run_id)
    if deferral is None:
        return scheduled
    due = deferral.closed_at if deferral.status == "overridden" and deferral.closed_at else deferral.next_evaluation_at
    return max(d for d in (scheduled, due) if d is not None)


def project_of(fn: Callable[..., Any], deployment: str, default: Callable[[], Path]) -> Path:
    """The project whose prefect.yaml declares ``deployment``: searched upwards from the flow's own
    source file (a team's flow finds the team's project, releasegate's flows find releasegate's), else
    ``default()`` (the app's: ``RELEASEGATE_PROJECT_DIR`` / the folder searched upwards from the working
    directory)."""
    source = inspect.getsourcefile(fn)
    if source:
        for folder in Path(source).resolve().parents:
            candidate = folder / "prefect.yaml"
            if candidate.is_file():
                try:
                    find_deployment(load_prefect_yaml(candidate), deployment)
                except KeyError:
                    continue
                return folder
    return default()


def fail_without_retry(message: str) -> Any:
    """A ``Failed`` state for the current flow run that Prefect will not retry.

    Prefect retries any failed flow run while its run count is within ``retries``, whether the flow raised
    or returned ``Failed``, and has no "do not retry" error for flows. A refusal no retry can fix (a model
    the manifest does not name) lowers this run's own retry budget to the attempts made, through the API,
    and then fails; the deployment's policy is untouched."""
    from prefect import get_client
    from prefect.runtime import flow_run

    if flow_run.id:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run.id)
            policy = run.empirical_policy.model_copy(update={"retries": max(0, run.run_count - 1)})
            client.update_flow_run(run.id, empirical_policy=policy)
    return Failed(message=message)


def _refuse_store(app: App, deployment: str, run_id: str, why: str) -> Any:
    """A run whose MLflow is not releasegate's: a ``refusal`` record, and Failed without retry."""
    app.log.append(
        records.refusal(
            decision_outcome=DecisionOutcome.reject,
            decision_rationale=why,
            subject=records.flow_run_subject(run_id),
            actor=f"releasegate:{deployment}",
            details={"field": "MLFLOW_TRACKING_URI", "rule": "a governed run logs to releasegate's MLflow"},
        )
    )
    get_run_logger().error(why)
    return fail_without_retry(why)


def _refuse_halted(app: App, deployment: str, run_id: str, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """A run of a halted model (its ``model_name`` parameter; ``services.halt``) does not start: a
    ``refusal`` record and ``Cancelled``. Refused, not deferred: a halt has no end the gateway could wait
    for, and a run that starts after a resume is the next scheduled one, not this one hours late."""
    try:
        model = inspect.signature(fn).bind_partial(*args, **kwargs).arguments.get("model_name")
    except TypeError:
        return None
    if not model:
        return None
    from releasegate.services.halt_log import refuse_if_halted

    rec = refuse_if_halted(
        app.log,
        str(model),
        app.clock.now(),
        what=f"run of {deployment}",
        subject=records.flow_run_subject(run_id),
        actor=f"releasegate:{deployment}",
    )
    if rec is None:
        return None
    get_run_logger().warning("%s (decision %s)", rec.decision_rationale, rec.decision_id)
    return Cancelled(name="Halted", message=f"HALTED: {rec.decision_rationale} (decision {rec.decision_id})")


def _admitted(app: App, fn: Callable[..., Any], deployment: str, gate: bool, args: Any, kwargs: Any) -> Any:
    from prefect.runtime import flow_run

    from releasegate.adapters import mlflow_scope
    from releasegate.adapters.prefect_slots import admission_scope

    run_id = str(flow_run.id)
    if why := mlflow_scope.conflict():  # before anything runs: nothing half-done
        return _refuse_store(app, deployment, run_id, why)
    with admission_scope():  # slots the gateway grants this run are held until the body returns
        if gate:
            from releasegate.adapters.prefect_gate import gate_current_run

            gate_current_run(app, deployment)
        # MLflow pointed at releasegate's store; runs logged inside carry the flow's own commit
        with mlflow_scope.run_scope(inspect.getsourcefile(fn), run_id, deployment):
            result = fn(*args, **kwargs)
        if why := mlflow_scope.moved_elsewhere():
            return _refuse_store(app, deployment, run_id, why)
        return result


def governed_flow(
    deployment: str,
    *,
    new_app: Callable[[], App],
    project_dir: str | Path | None = None,
    gate: bool = False,
    own_concurrency: bool = False,
    **flow_kwargs: Any,
) -> Callable[[Callable[..., Any]], Any]:
    """A Prefect flow under the deployment's runtime policy (retries, delay, timeout) and late-run rule,
    read from the prefect.yaml of the flow's project (``project_of``, or ``project_dir``). ``gate=True``
    also puts every run through the capacity gateway first (in-place deferral with a reason code); flows
    that know their business dates call ``gate_current_run`` themselves instead. A concurrency limit
    declared in ``runtime_policy`` is held around the whole run, unless ``own_concurrency=True``: then the
    flow takes ``prefect_locks.work_slot`` itself around its work (``promotion``: not its approval waits).
    ``new_app`` (the composition root's ``app``) gives each run its collaborators. Public as
    ``releasegate.governed`` (``releasegate.jobs``, which passes it)."""

    def decorate(fn: Callable[..., Any]):
        root = (
            Path(project_dir) if project_dir is not None else project_of(fn, deployment, lambda: new_app().project_root)
        )
        try:
            dep = find_deployment(load_prefect_yaml(root / "prefect.yaml"), deployment)
            policy = policy_from_deployment(dep)
            crons = cron_schedules(dep)
        except KeyError:
            raise KeyError(
                f"deployment {deployment!r} is not in {root / 'prefect.yaml'}: declare it there with its "
                "runtime_policy (see docs/reference/runtime-policy.md), or pass project_dir="
            ) from None
        # Resolve string annotations (``from __future__ import annotations``) in the flow's own module:
        # Prefect validates parameters against the wrapper, whose module does not know, e.g., ``date``.
        # ``include_extras`` keeps ``Annotated[...]`` constraints; a name only importable under
        # ``TYPE_CHECKING`` cannot be resolved at run time: then the annotations stay as written.
        try:
            fn.__annotations__ = typing.get_type_hints(fn, include_extras=True)
        except NameError:
            pass

        @functools.wraps(fn)
        def body(*args: Any, **kwargs: Any):
            from prefect.runtime import flow_run

            app = new_app()
            now = app.clock.now()
            if (refused := _refuse_halted(app, deployment, str(flow_run.id), body, args, kwargs)) is not None:
                return refused
            verdict = late_run_verdict(policy.late_run, _due_at(app, str(flow_run.id)), now)
            if not verdict.run:
                app.log.append(
                    records.late_run(
                        decision_outcome=DecisionOutcome.reject,
                        decision_rationale=verdict.reason,
                        subject=records.flow_run_subject(flow_run.id),
                        actor=f"releasegate:{deployment}",
                        details={
                            "deployment": deployment,
                            "lateness_seconds": int(verdict.lateness.total_seconds()),
                            "late_run_mode": policy.late_run.mode.value,
                        },
                    )
                )
                get_run_logger().warning(verdict.reason)
                return Cancelled(message=verdict.reason)
            from releasegate.adapters.prefect_schedule import apply_schedule_rules

            ended = apply_schedule_rules(app, deployment, policy, crons)  # DST, one run per occurrence, catch-up
            if ended is not None:
                return ended
            if policy.concurrency_by == "releasegate" and not own_concurrency:
                from releasegate.adapters.prefect_locks import work_slot

                with work_slot(deployment, policy) as held:
                    if not held:
                        why = f"{deployment}: every slot of its concurrency_limit ({policy.concurrency_limit}) is taken"
                        return Cancelled(message=f"{why} (collision_strategy CANCEL_NEW)")
                    return _admitted(app, fn, deployment, gate, args, kwargs)
            return _admitted(app, fn, deployment, gate, args, kwargs)

        body.runtime_policy = policy  # type: ignore[attr-defined]
        # The decorator-factory form: the same Flow as flow(body, ...); that spelling is missing from
        # Prefect's overloads (a function *and* options).
        return flow(
            name=flow_kwargs.pop("name", deployment),
            retries=policy.retries,
            retry_delay_seconds=policy.retry_delay_seconds,
            timeout_seconds=policy.timeout_seconds,
            **flow_kwargs,
        )(body)

    return decorate

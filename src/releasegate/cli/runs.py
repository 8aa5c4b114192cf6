"""`releasegate run`, `releasegate watch` and `releasegate awaiting`: start and follow runs on the server."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from releasegate.cli._common import console, exit_refused


def _parameters(params: list[str], model: str | None) -> dict[str, str]:
    """``key=value`` as text; ``prefect_manual.start`` reads each value as the flow's parameter type."""
    out: dict[str, str] = {}
    for p in params:
        key, sep, raw = p.partition("=")
        if not sep or not key.strip():
            exit_refused("--param", f"{p!r} is not key=value (e.g. -p business_date=2026-12-03)", code=2)
        out[key.strip()] = raw
    if model is not None:
        out["model_name"] = model
    return out


MANIFEST_FLOWS = ("eod-scoring", "backfill")  # their runs score a model from its manifest entry


def _check_model(deployment: str, model: str | None) -> None:
    """Refuse (exit 2) a model the manifest does not name before a run of EOD or backfill is created,
    with the closest name; nothing to check without a manifest (the run then says what is missing)."""
    if model is None or deployment.split("/")[0] not in MANIFEST_FLOWS:
        return
    from releasegate.adapters.config import ConfigError, load
    from releasegate.adapters.prefect_manual import did_you_mean

    try:
        manifest = load("models")
    except ConfigError:
        return
    known = [m.name for m in manifest.models]
    if model not in known:
        names = ", ".join(known) or "none"
        exit_refused(
            "--model",
            f"{model!r} is not in the model manifest{did_you_mean(model, known)} (known: {names}); "
            "add it to blocks/models.yaml and run `releasegate infra up`, or to the file $RELEASEGATE_MODELS names "
            "where the worker runs; no run was created",
            code=2,
        )


def _approve_hint(view) -> str:
    return (
        f"  approve: releasegate approve {view.id} --role {view.awaiting_role} --by YOU --ref TICKET"
        f"   (or --reject; the Prefect UI's form takes `--token-only` output)"
    )


def _print_artifacts(run_id: str) -> None:
    from releasegate.adapters.prefect_manual import run_artifacts

    for key, description, verdict in run_artifacts(run_id):
        said = ", ".join(f"{k} {v}" for k, v in verdict.items())
        line = f"  artifact {key}: {description}" + (f" - {said}" if said else "")
        console.print(line, markup=False, highlight=False)


# watch's exit codes: 0 Completed (a promotion: promoted), 1 Failed / Crashed / Cancelled, 3 still running
# at the timeout, 4 a promotion held (state Completed named "Held"), 5 one rejected ("Rejected")
EXIT_BY_NAME = {"Held": 4, "Rejected": 5}


def _exit_code(state_name: str, completed: bool) -> int:
    if not completed:
        return 1
    return EXIT_BY_NAME.get(state_name, 0)


CAP_WAITS = ("CAPACITY_LIMIT", "QUEUE_LIMIT")


def _cap_wait(run_id: str) -> str | None:
    """A due run that Prefect holds behind a full pool or queue cap (the sweeper records it as a deferral,
    its Prefect state stays Scheduled or Late): the cap and its predicted start."""
    from sqlalchemy.exc import SQLAlchemyError

    from releasegate import bootstrap

    try:
        d = bootstrap.scheduling_store().get_deferral(run_id)
    except SQLAlchemyError:
        return None  # the log is not reachable from here: the states are still followed
    if d is None or d.status != "open" or d.reason_code not in CAP_WAITS:
        return None
    cap = "pool" if d.reason_code == "CAPACITY_LIMIT" else "queue"
    return (
        f"deferred ({d.reason_code}): waits for a slot, the {cap} cap is full; "
        f"predicted start {d.predicted_start_at or d.next_evaluation_at:%Y-%m-%d %H:%M:%S} UTC"
    )


def _follow(run_id: str, timeout_seconds: int, poll_seconds: float = 1.0) -> None:
    """Print each state the run enters until it ends (exit codes: ``EXIT_BY_NAME``)."""
    from releasegate.adapters.prefect_manual import StartRefused, read

    deadline, seen = time.monotonic() + timeout_seconds, None
    while True:
        try:
            v = read(run_id)
        except StartRefused as exc:
            exit_refused(exc, code=2)  # not a flow run id, or no such run: bad input
        wait = None if v.final or v.state_name == "Deferred" else _cap_wait(run_id)
        shown = (v.state_type, v.state_name, v.message, v.awaiting_role, wait)
        if shown != seen:
            seen = shown
            word = "until" if v.state_name == "Deferred" else "for"
            when = f" {word} {v.scheduled_time:%Y-%m-%d %H:%M:%S} UTC" if v.scheduled_time else ""
            msg = f": {v.message}" if v.message and v.state_name != "Deferred" else ""
            console.print(f"{time.strftime('%H:%M:%S')}  {v.label}{when}{msg}", markup=False, highlight=False)
            if wait:
                console.print(f"          {wait}", markup=False, highlight=False)
            if v.awaiting_role:
                console.print(_approve_hint(v), markup=False, highlight=False)
        if v.final:
            _print_artifacts(run_id)
            raise typer.Exit(_exit_code(v.state_name, v.completed))
        if time.monotonic() > deadline:
            console.print(f"still {v.label} after {timeout_seconds} s; follow it with: releasegate watch {run_id}")
            raise typer.Exit(3)
        time.sleep(poll_seconds)


def run_cmd(
    deployment: Annotated[str, typer.Argument(help="Deployment, e.g. eod-scoring, promotion, backfill.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="key=value, read as the parameter's type (-p rows=500).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Shorthand for -p model_name=MODEL.")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Follow the run until it ends.")] = False,
    timeout: Annotated[int, typer.Option(help="With --watch: stop following after this many seconds.")] = 3600,
) -> None:
    """Start a run of a deployment on the Prefect server (PREFECT_API_URL), as `prefect deployment run`
    does; with --watch, print its states: deferrals with their reason and next evaluation, and at an
    approval pause the `releasegate approve` line for the role it waits for."""
    from releasegate.adapters.prefect_manual import NoServer, StartRefused, start, ui_url

    parameters = _parameters(param or [], model)
    _check_model(deployment, parameters.get("model_name"))
    try:
        v = start(deployment, parameters)
    except NoServer as exc:
        exit_refused("PREFECT_API_URL", str(exc), code=2)
    except StartRefused as exc:
        exit_refused(exc)
    console.print(f"started {v.deployment} run {v.name!r}: {v.id}", markup=False, highlight=False)
    console.print(f"  parameters {json.dumps(v.parameters, default=str)}", markup=False, highlight=False)
    console.print(f"  {ui_url(v.id)}", markup=False, highlight=False)
    if watch:
        _follow(v.id, timeout)
    else:
        console.print(f"  follow it: releasegate watch {v.id}", markup=False, highlight=False)


def watch_cmd(
    run: Annotated[str, typer.Argument(help="Flow run id.")],
    timeout: Annotated[int, typer.Option(help="Stop following after this many seconds.")] = 3600,
) -> None:
    """Follow a flow run until it ends: its states, deferrals and approval pauses. Exit 0 when Completed
    (a promotion: promoted), 4 when a promotion was held, 5 when rejected, 1 when Failed, Crashed or
    Cancelled, 3 when still running at the timeout."""
    from releasegate.adapters.prefect_manual import NoServer

    try:
        _follow(run, timeout)
    except NoServer as exc:
        exit_refused("PREFECT_API_URL", str(exc), code=2)


def awaiting_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """Promotion runs paused for an approval: model, version, the role awaited and the line to approve."""
    from releasegate import bootstrap
    from releasegate.adapters.prefect_manual import NoServer, awaiting_approval
    from releasegate.services.promotion import no_eligible_approver_for

    try:
        views = awaiting_approval()
    except NoServer as exc:
        exit_refused("PREFECT_API_URL", str(exc), code=2)
    app = bootstrap.app()
    nobody = {v.id: no_eligible_approver_for(app, str(v.id), v.parameters, v.awaiting_role) for v in views}
    rows = [
        {
            "flow_run_id": v.id,
            "model_name": v.parameters.get("model_name"),
            "candidate_version": v.parameters.get("candidate_version"),
            "requested_by": v.parameters.get("requested_by"),
            "awaiting": v.awaiting_role,
            "paused_since": v.paused_since.isoformat() if v.paused_since else None,
            "no_eligible_approver": nobody[v.id],
        }
        for v in views
    ]
    if as_json:
        console.print_json(data=rows)
        return
    if not rows:
        console.print("no promotion waits for an approval")
        return
    for v, r in zip(views, rows, strict=True):
        console.print(
            f"{r['model_name']} v{r['candidate_version']}  awaiting {str(r['awaiting']).upper()} since "
            f"{r['paused_since']}  (requested by {r['requested_by']})",
            markup=False,
            highlight=False,
        )
        if r["no_eligible_approver"]:  # nobody can give it: say so instead of a line to approve
            console.print(f"  NOT APPROVABLE: {r['no_eligible_approver']}", markup=False, highlight=False)
            continue
        console.print(_approve_hint(v), markup=False, highlight=False)

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


def _follow(run_id: str, timeout_seconds: int, poll_seconds: float = 1.0) -> None:
    """Print each state the run enters until it ends (exit 0 when Completed, 1 otherwise)."""
    from releasegate.adapters.prefect_manual import StartRefused, read

    deadline, seen = time.monotonic() + timeout_seconds, None
    while True:
        try:
            v = read(run_id)
        except StartRefused as exc:
            exit_refused(exc)
        shown = (v.state_type, v.state_name, v.message, v.awaiting_role)
        if shown != seen:
            seen = shown
            word = "until" if v.state_name == "Deferred" else "for"
            when = f" {word} {v.scheduled_time:%Y-%m-%d %H:%M:%S} UTC" if v.scheduled_time else ""
            msg = f": {v.message}" if v.message and v.state_name != "Deferred" else ""
            console.print(f"{time.strftime('%H:%M:%S')}  {v.label}{when}{msg}", markup=False, highlight=False)
            if v.awaiting_role:
                console.print(_approve_hint(v), markup=False, highlight=False)
        if v.final:
            _print_artifacts(run_id)
            raise typer.Exit(0 if v.completed else 1)
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
    """Follow a flow run until it ends: its states, deferrals and approval pauses (exit 0 when Completed)."""
    from releasegate.adapters.prefect_manual import NoServer

    try:
        _follow(run, timeout)
    except NoServer as exc:
        exit_refused("PREFECT_API_URL", str(exc), code=2)


def awaiting_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """Promotion runs paused for an approval: model, version, the role awaited and the line to approve."""
    from releasegate.adapters.prefect_manual import NoServer, awaiting_approval

    try:
        views = awaiting_approval()
    except NoServer as exc:
        exit_refused("PREFECT_API_URL", str(exc), code=2)
    rows = [
        {
            "flow_run_id": v.id,
            "model_name": v.parameters.get("model_name"),
            "candidate_version": v.parameters.get("candidate_version"),
            "requested_by": v.parameters.get("requested_by"),
            "awaiting": v.awaiting_role,
            "paused_since": v.paused_since.isoformat() if v.paused_since else None,
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
        console.print(_approve_hint(v), markup=False, highlight=False)

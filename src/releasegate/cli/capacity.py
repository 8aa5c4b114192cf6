"""`releasegate capacity plan`: how large a pool keeps EOD on time and the 30-minute deferral SLA."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from releasegate.cli._common import console, err, exit_refused

capacity_app = typer.Typer(
    help="Plan the pool from run history: the deferral SLA is kept by sizing.", no_args_is_help=True
)

_WHAT_IF = re.compile(
    r"^(?P<action>add|remove|times):(?P<dep>[A-Za-z0-9_.\-/]+)"
    r"(?:@(?P<queue>[A-Za-z0-9_\-]+))?(?:=(?P<times>[0-9:,]+))?(?:/(?P<minutes>\d+)m)?$"
)
WHAT_IF_HELP = (
    "Change the workload before planning (repeatable): 'remove:DEPLOYMENT', "
    "'add:DEPLOYMENT@QUEUE=HH:MM[,HH:MM...]/MINUTESm' (daily runs, UTC), 'times:DEPLOYMENT=HH:MM[,...]' "
    "(move its daily runs)."
)


def _home() -> Path:
    from releasegate import bootstrap

    return bootstrap.settings().home_dir


def plan_path() -> Path:
    from releasegate.store.capacity_plans import plan_path

    return plan_path(_home())


def last_recommendation() -> int | None:
    from releasegate.store.capacity_plans import last_recommendation

    return last_recommendation(_home())


def pool_warning(configured: int) -> str | None:
    """A line for `policy check` and `infra up` when the configured pool is below the last plan's."""
    rec = last_recommendation()
    if rec is not None and configured < rec:
        return (
            f"pool_concurrency_limit {configured} is below the last capacity plan's recommendation {rec} "
            f"({plan_path()}): on that history the 30-minute deferral SLA will be missed; raise the pool "
            "or re-plan with `releasegate capacity plan`"
        )
    return None


def _parse_what_if(texts: list[str]):
    from releasegate.tools.capacity_plan import WhatIf

    out = []
    for text in texts:
        m = _WHAT_IF.match(text.strip())
        if not m:
            exit_refused(
                "--what-if",
                f"{text!r} is not a change: remove:DEPLOYMENT, add:DEPLOYMENT@QUEUE=HH:MM/MINUTESm "
                "or times:DEPLOYMENT=HH:MM",
                code=2,
            )
        action, dep = m["action"], m["dep"]
        times: tuple[int, ...] = ()
        if m["times"]:
            try:
                times = tuple(int(h) * 60 + int(mi) for h, mi in (t.split(":") for t in m["times"].split(",")))
            except ValueError:
                exit_refused("--what-if", f"{text!r}: times are HH:MM, comma-separated", code=2)
            if any(not 0 <= t < 1440 for t in times):
                exit_refused("--what-if", f"{text!r}: a time of day is 00:00 to 23:59", code=2)
        if action == "add" and not (m["queue"] and times and m["minutes"]):
            exit_refused("--what-if", f"{text!r}: add needs @QUEUE, =HH:MM and /MINUTESm", code=2)
        if action == "times" and not times:
            exit_refused("--what-if", f"{text!r}: times needs =HH:MM", code=2)
        out.append(WhatIf(action, dep, m["queue"] or "", times, int(m["minutes"] or 0)))
    return out


@capacity_app.command("plan")
def plan_cmd(
    weeks: Annotated[int, typer.Option(min=1, max=8, help="Weeks of Prefect run history to plan from.")] = 4,
    workload: Annotated[
        str | None,
        typer.Option(
            help="Plan a simulated workload instead of history: default, heavy-storm, small-pool, eod-freeze."
        ),
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=62, help="Days of a simulated workload.")] = 7,
    deployments: Annotated[int, typer.Option(min=5, max=5000, help="Deployments of a simulated workload.")] = 200,
    what_if: Annotated[list[str] | None, typer.Option("--what-if", help=WHAT_IF_HELP)] = None,
    exhaustive: Annotated[bool, typer.Option(help="Check every pool up to the answer, not only a bisection.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """The smallest pool that keeps every EOD run on time and the open deferral p95 within 30 minutes.

    Replays the governed deployments' run history from the Prefect API (PREFECT_API_URL), or a simulated
    workload, through the simulator under the shipped admission rule on pools of different sizes
    (doubling, then bisection; every candidate simulated). Saves the plan in the releasegate home:
    `policy check` and `infra up` warn when the configured pool is below its recommendation."""
    from releasegate.adapters.config import capacity_from_file, load_gateway_config
    from releasegate.tools.capacity_plan import apply_what_if, history_workload, plan_capacity
    from releasegate.tools.sim_workload import WORKLOADS, build_workload

    changes = _parse_what_if(what_if or [])
    if workload is not None:
        if workload not in WORKLOADS:
            exit_refused("--workload", f"unknown {workload!r}; choose from {', '.join(WORKLOADS)}", code=2)
        shipped = capacity_from_file()
        cfg = _sim_config(shipped, days=days, deployments=deployments, **WORKLOADS[workload])
        runs, gw, _ = build_workload(cfg)
        gw = gw.model_copy(
            update={"admission": shipped.admission, "reservation_horizon_minutes": shipped.reservation_horizon_minutes}
        )
        source = f"simulated workload {workload!r} ({days} days, {deployments} deployments)"
    else:
        from releasegate.adapters.prefect_history import read_run_history
        from releasegate.adapters.prefect_manual import NoServer, api_url

        try:
            api_url()
        except NoServer as exc:
            exit_refused("PREFECT_API_URL", f"{exc}; or plan a simulated workload with --workload default", code=2)
        gw = load_gateway_config()
        until = datetime.now(UTC)
        try:
            history = read_run_history(set(gw.deployments), until - timedelta(weeks=weeks), until)
        except (OSError, httpx.HTTPError, RuntimeError) as exc:  # no server answering there
            exit_refused("PREFECT_API_URL", f"cannot read run history from {api_url()}: {exc}", code=2)
        try:
            runs, start = history_workload(history, gw)
        except ValueError as exc:
            exit_refused("history", f"{exc} in the last {weeks} week(s) on {api_url()}", code=2)
        span = max(1, min(62, weeks * 7 + 1))
        cfg = _sim_config(gw, days=span, start=start, pool_cap=gw.pool_concurrency_limit)
        days = span
        source = f"Prefect run history, {weeks} week(s) to {until:%Y-%m-%d %H:%M} UTC ({len(runs)} runs)"
    try:
        runs = apply_what_if(runs, gw, days, changes)
    except ValueError as exc:
        exit_refused("--what-if", str(exc), code=2)
    if changes:
        source += " with " + ", ".join(f"{c.action}:{c.deployment}" for c in changes)

    def progress(row) -> None:
        if not as_json:
            mark = "meets" if row.meets else "misses"
            err.print(
                f"[dim]pool {row.pool}: {mark} (EOD on time {row.eod_on_time_share:.0%}, "
                f"open p95 {row.open_p95_minutes} min)[/]"
            )

    plan = plan_capacity(runs, gw, cfg, source, exhaustive=exhaustive, progress=progress)
    from releasegate.store.capacity_plans import save_plan

    path = save_plan(_home(), plan.model_dump_json(indent=2))
    if as_json:
        print(plan.model_dump_json(indent=2))
        return
    _print_plan(plan, path)


def _sim_config(gw, **workload):
    """The simulation's settings: the gateway's SLA, priority window and backoff, and the workload's shape."""
    from releasegate.tools.sim_workload import SimConfig

    return SimConfig(
        sla_alert_minutes=gw.sla_alert_minutes,
        sla_incident_minutes=gw.sla_incident_minutes,
        priority_window_minutes=gw.priority_window_minutes,
        backoff_seconds=gw.backoff_seconds,
        **workload,
    )


def _print_plan(plan, path: Path) -> None:
    # a queue column only where some queue is capped below the pool (else every queue may use the whole pool)
    capped = sorted({q for r in plan.rows for q, c in r.queue_caps.items() if c < r.pool})
    table = Table(title=f"capacity plan: {plan.source}, rule {plan.admission}")
    cols = ["pool", *capped, "EOD on time", "waited", "open p50 min", "open p95 min", "held p95 min", "> 60 min"]
    for col in [*cols, "utilisation", "goals"]:
        table.add_column(col, justify="left" if col == "goals" else "right")
    for r in plan.rows:
        table.add_row(
            str(r.pool),
            *(str(r.queue_caps.get(q, "")) for q in capped),
            f"{r.eod_on_time_share:.1%}",
            str(r.waited_runs),
            f"{r.open_p50_minutes:.1f}",
            f"{r.open_p95_minutes:.1f}",
            f"{r.held_p95_minutes:.1f}",
            f"{r.over_60_share:.1%}",
            f"{r.utilisation:.0%}",
            "[green]met[/]" if r.meets else "[red]missed[/]",
        )
    console.print(table)
    if plan.recommended_pool_cap is None:
        console.print(
            "[red]No pool up to 4096 keeps EOD on time and the open p95 within "
            f"{plan.sla_minutes} min on this workload.[/]"
        )
    else:
        caps = ", ".join(f"{k} {v}" for k, v in plan.recommended_queue_caps.items())
        console.print(
            f"Recommended: pool_concurrency_limit [bold]{plan.recommended_pool_cap}[/] (queues: {caps}); "
            f"configured: {plan.configured_pool}. {plan.runs} runs over {plan.days} days, {plan.seconds:.1f} s."
        )
    console.print(f"[dim]saved to {path}[/]")

"""`releasegate simulate`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from releasegate.cli._common import console, err, exit_refused


def simulate_cmd(
    days: Annotated[int, typer.Option(help="Days of schedules to simulate.")] = 7,
    deployments: Annotated[int, typer.Option(help="Number of deployments in the workload.")] = 200,
    seed: Annotated[int, typer.Option(help="Workload seed (deterministic).")] = 42,
    pool_cap: Annotated[int | None, typer.Option(help="Pool concurrency cap (default deployments // 10).")] = None,
    bulk_cap: Annotated[int | None, typer.Option(help="Cap of the bulk queue (default: the pool cap).")] = None,
    workloads: Annotated[
        str | None,
        typer.Option(
            help="Compare on named workloads (comma-separated, or 'all'): default, heavy-storm, small-pool, "
            "eod-freeze; one table with the lower bound of each."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """A week of cron schedules through the capacity gateway and through Prefect-native dispatch.

    Virtual clock; the gateway is the same code the flows call. Priority window and backoff come from
    the shipped capacity policy (blocks/capacity_policy.yaml)."""
    from releasegate.tools.simulate import WORKLOADS, SimConfig, simulate, simulate_workloads

    base = {}
    try:
        from releasegate.adapters.config import capacity_from_file

        shipped = capacity_from_file()
        base = {"priority_window_minutes": shipped.priority_window_minutes, "backoff_seconds": shipped.backoff_seconds}
        base |= {"sla_alert_minutes": shipped.sla_alert_minutes, "sla_incident_minutes": shipped.sla_incident_minutes}
    except FileNotFoundError as exc:  # no project folder: the simulation's own defaults are the shipped values
        err.print(f"[yellow]shipped capacity policy not found ({exc}); using the built-in defaults[/]")
    try:
        cfg = SimConfig(days=days, deployments=deployments, seed=seed, pool_cap=pool_cap, bulk_cap=bulk_cap, **base)
    except ValueError as exc:
        exit_refused(exc, code=2)
    if workloads:
        names = (
            list(WORKLOADS) if workloads.strip() == "all" else [w.strip() for w in workloads.split(",") if w.strip()]
        )
        try:
            reports = simulate_workloads(names, cfg, progress=None if as_json else _progress)
        except ValueError as exc:
            exit_refused(exc, code=2)
        if as_json:
            print(json.dumps([r.model_dump(mode="json") for r in reports], indent=2))
        else:
            _print_workloads(reports)
        return
    report = simulate(cfg)
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    _print_simulation(report)


def _print_simulation(report) -> None:
    models = (report.prefect_native, report.releasegate, report.reservation)
    n = models[0]
    kinds = ", ".join(f"{k} {v}" for k, v in report.runs_by_kind.items())
    console.print(
        f"[bold]{report.config.days} days x {report.config.deployments} deployments[/]: "
        f"{n.runs} runs ({kinds}); pool cap {report.pool_cap}; simulated in {report.seconds:.2f} s"
    )
    t = Table("", "prefect-native", "priority window", "reservation", title="native vs the gateway's two rules")
    t.columns[0].no_wrap = True
    pct = lambda v: f"{v:.1%}"  # noqa: E731
    mins = lambda v: f"{v:.1f} min"  # noqa: E731
    rows = [
        ("EOD runs", lambda m: str(m.eod_runs)),
        ("EOD started on time (<= 5 min)", lambda m: pct(m.eod_on_time_share)),
        ("EOD start delay p50", lambda m: mins(m.eod_delay_p50_minutes)),
        ("EOD start delay p95", lambda m: mins(m.eod_delay_p95_minutes)),
        ("EOD start delay max", lambda m: mins(m.eod_delay_max_minutes)),
        (
            "EOD SLA breaches (> 30 / > 60 min)",
            lambda m: f"{pct(m.eod_sla_alert_share)} / {pct(m.eod_sla_incident_share)}",
        ),
        ("all runs: start delay p50", lambda m: mins(m.all_delay_p50_minutes)),
        ("all runs: start delay p95", lambda m: mins(m.all_delay_p95_minutes)),
        (
            "all runs: SLA breaches (> 30 / > 60 min)",
            lambda m: f"{pct(m.all_sla_alert_share)} / {pct(m.all_sla_incident_share)}",
        ),
        ("runs started inside a freeze/maintenance window", lambda m: str(m.started_in_window)),
        ("pool utilisation", lambda m: pct(m.utilisation)),
        ("gateway evaluations", lambda m: f"{m.gateway_evaluations:,}" if m.gateway_evaluations else "-"),
        ("model time", lambda m: f"{m.seconds:.2f} s"),
    ]
    for label, cell in rows:
        t.add_row(label, *(cell(m) for m in models))
    console.print(t)
    for m in models[1:]:
        d = Table(
            "deferral reason",
            "deferrals",
            "runs",
            "p50",
            "p95",
            "max",
            "held p95",
            title=f"{m.model} deferrals per run: first deferral to admission (the sweeper's SLA clock, "
            "counted under a run's last reason); held: only while deferred",
        )
        for code, st in m.deferrals_by_reason.items():
            d.add_row(
                code,
                f"{st.deferrals:,}",
                f"{st.runs:,}",
                *((mins(st.p50_minutes), mins(st.p95_minutes), mins(st.max_minutes)) if st.open_runs else ("-",) * 3),
                mins(st.held_p95_minutes),
            )
        console.print(d)


def _progress(name: str, i: int, n: int) -> None:
    err.print(f"[dim]simulating workload {i}/{n}: {name} ...[/]")


def _print_workloads(reports) -> None:
    """One table: per workload the three dispatch models and the bound no schedule can beat."""
    from releasegate.tools.sim_report import WORKLOAD_COLUMNS, workload_rows

    t = Table(
        *WORKLOAD_COLUMNS,
        title="deferral SLA goal: p95 <= 30 min (open: first deferral to admission, as the sweeper escalates; "
        "held: only while deferred); all-run p95 and > 60 min: <= native and <= 1.5x the bound",
    )
    for r in reports:
        rows = workload_rows(r)
        for i, row in enumerate(rows):
            t.add_row(*row, end_section=i == len(rows) - 1)
    console.print(t)
    console.print(
        "[dim]lower bound: no schedule that keeps the windows can do better on that workload, even knowing every "
        "run's duration (tools/sim_bound.py). prefect-native ignores change freezes and maintenance windows, "
        "so it can come in under it.[/]"
    )

"""Scheduling KPIs (pure): share of scheduled runs started, share of deployments with a retry+timeout
profile, and deferral durations against the 30-minute SLA."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

TARGET_STARTED = 0.99
TARGET_POLICY = 1.0


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class KpiReport(BaseModel):
    since: datetime
    until: datetime
    scheduled_runs: int
    started_runs: int
    deployments: int
    deployments_with_policy: int
    deferrals: int
    deferral_minutes_p50: float | None
    deferral_minutes_p95: float | None
    deferral_minutes_max: float | None
    deferrals_over_sla: int
    sla_minutes: int

    @property
    def started_share(self) -> float | None:
        return self.started_runs / self.scheduled_runs if self.scheduled_runs else None

    @property
    def policy_share(self) -> float | None:
        return self.deployments_with_policy / self.deployments if self.deployments else None

    def rows(self) -> list[tuple[str, str, str, str]]:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:.1f} %"

        def mins(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.1f} min"

        started_ok = self.started_share is None or self.started_share >= TARGET_STARTED
        policy_ok = self.policy_share is not None and self.policy_share >= TARGET_POLICY
        worst_ok = self.deferral_minutes_max is None or self.deferral_minutes_max <= self.sla_minutes
        return [
            (
                "scheduled runs started",
                f"{pct(self.started_share)} ({self.started_runs}/{self.scheduled_runs})",
                "≥ 99 %",
                "ok" if started_ok else "MISSED",
            ),
            (
                "deployments with retry+timeout profile",
                f"{pct(self.policy_share)} ({self.deployments_with_policy}/{self.deployments})",
                "100 %",
                "ok" if policy_ok else "MISSED",
            ),
            ("deferral duration p50", mins(self.deferral_minutes_p50), f"≤ {self.sla_minutes} min", ""),
            ("deferral duration p95", mins(self.deferral_minutes_p95), f"≤ {self.sla_minutes} min", ""),
            (
                "deferral duration max",
                mins(self.deferral_minutes_max),
                f"≤ {self.sla_minutes} min",
                "ok" if worst_ok else f"MISSED ({self.deferrals_over_sla} over SLA)",
            ),
        ]

    def markdown(self) -> str:
        lines = [
            f"# releasegate KPIs {self.since:%Y-%m-%d %H:%M} – {self.until:%Y-%m-%d %H:%M} UTC",
            "",
            "| KPI | value | target | status |",
            "|---|---|---|---|",
        ]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in self.rows()]
        lines.append(f"\n{self.deferrals} deferrals in the period.")
        return "\n".join(lines)


def deferral_minutes(first_deferred: list[datetime], ended: list[datetime | None], now: datetime) -> list[float]:
    return [((end or now) - start) / timedelta(minutes=1) for start, end in zip(first_deferred, ended, strict=True)]

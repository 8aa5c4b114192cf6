"""Backfill: re-run the EOD scoring of past business dates, once per model and date, resumable.

The range walks each model's business calendar (``calendar:`` in the manifest, weekdays by default): a
weekend day or a listed holiday is ``not_business_day``, not scored and not a failure. A business date
without data (no file, no rows) is ``no_data``: its own outcome, named with the reason, not a failure of
the other dates. For each (model, business date) of the range: skip it when an earlier backfill already scored it (a
completion ``backfill:<model>`` for that date in the scheduling store, written only after the day's
predictions are on disk), else score the day's inputs with the version that was champion on that date
according to the decision log (the last sealed final promotion or full rollback recorded before the end
of that date, UTC), or the ``version`` named, and mark it done. A crash or kill between two dates loses
nothing: the rerun starts at the first date not marked. Past dates are scored and measured, never acted
on: no rollback or retrain is requested for a date that is over.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from pydantic import BaseModel

from releasegate.adapters.config import ConfigError, load, model_spec
from releasegate.adapters.data_sources import NoDataForDate
from releasegate.app import App
from releasegate.errors import Refused
from releasegate.policy.calendar import WEEKDAYS_ONLY
from releasegate.policy.models import ModelManifest
from releasegate.ports import DecisionLog
from releasegate.services.eod import score_business_date
from releasegate.services.promotion_log import promotion_history


class DayStatus(StrEnum):
    scored = "scored"
    already_done = "already_done"  # scored by an earlier backfill run: not again
    no_version = "no_version"  # nothing was champion on that date and no version was named
    not_business_day = "not_business_day"  # outside the model's calendar: a weekend day or a holiday
    no_data = "no_data"  # a business date without data (no file, no rows): a late file may still come
    failed = "failed"


class BackfillDay(BaseModel):
    model_name: str
    business_date: date
    status: DayStatus
    version: str | None = None
    version_source: str = ""
    rows: int | None = None
    failures: int | None = None
    kpi: str | None = None
    value: float | None = None
    max_psi: float | None = None
    detail: str = ""


def completion_key(model: str) -> str:
    return f"backfill:{model}"


def governed_models() -> list[str]:
    """Every model of the manifest that declares its current inputs (what a backfill can re-score)."""
    try:
        manifest: ModelManifest = load("models")
    except ConfigError as exc:
        if "cannot be read" in exc.rule:
            return []
        raise
    return [m.name for m in manifest.models if m.current_inputs is not None]


def champion_on(log: DecisionLog, model: str, day: date) -> str | None:
    """The prod version that was champion at the end of ``day`` per the decision log, None if none was."""
    cutoff = datetime.combine(day + timedelta(days=1), time.min, UTC)
    finals = promotion_history(model, "backfill", log).finals
    moves = [(r.decision_timestamp, str(r.details["prod_version"])) for r in finals]
    good, _ = log.trusted(kind="rollback", subject=f"model:{model}")
    moves += [
        (r.decision_timestamp, str(r.details["new_version"]))
        for r in good
        if r.details.get("status") == "final" and r.details.get("method") == "full" and r.details.get("new_version")
    ]
    before = [m for m in moves if m[0] < cutoff]
    return max(before)[1] if before else None


def backfill_days(
    app: App,
    models: list[str],
    days: list[date],
    *,
    flow_run_id: str,
    version: str | None = None,
    progress: Callable[[BackfillDay, int, int], None] | None = None,
) -> list[BackfillDay]:
    """Score every (model, day) not done yet, in date order; ``progress(row, done, total)`` after each."""
    store, clock = app.store, app.clock
    out: list[BackfillDay] = []
    total = len(models) * len(days)
    for model in models:
        spec = model_spec(model)
        calendar = spec.calendar if spec is not None else WEEKDAYS_ONLY
        done = {d for _, d in store.completed([completion_key(model)], days)}
        for day in days:
            why_not = calendar.why_not(day)
            if why_not is not None:
                row = BackfillDay(
                    model_name=model, business_date=day, status=DayStatus.not_business_day, detail=why_not
                )
            else:
                row = _one(app, model, day, version, day in done)
            if row.status is DayStatus.scored:
                store.mark_completed(completion_key(model), day, flow_run_id, clock.now())
            out.append(row)
            if progress:
                progress(row, len(out), total)
    return out


def _one(app: App, model: str, day: date, version: str | None, done: bool) -> BackfillDay:
    if done:
        return BackfillDay(model_name=model, business_date=day, status=DayStatus.already_done)
    chosen, source = version, "named"
    if chosen is None:
        chosen, source = champion_on(app.log, model, day), "decision log: champion on that date"
    if chosen is None:
        registry = app.registry
        current = registry.alias_version(registry.model_name("prod", model), registry.CHAMPION)
        if current is None:
            return BackfillDay(
                model_name=model,
                business_date=day,
                status=DayStatus.no_version,
                detail="no champion on that date in the decision log and none now: name a version",
            )
        chosen, source = current, "current champion (the decision log names none on that date)"
    try:
        result = score_business_date(app.registry, model, day, home=app.settings.home_dir, version=chosen)
    except NoDataForDate as exc:  # the business date has no data (yet): its own outcome, go on
        return BackfillDay(
            model_name=model, business_date=day, status=DayStatus.no_data, version=chosen, detail=str(exc)
        )
    except (Refused, ConfigError) as exc:  # an unreadable file, a missing column: say which, go on
        return BackfillDay(
            model_name=model, business_date=day, status=DayStatus.failed, version=chosen, detail=str(exc)
        )
    return BackfillDay(
        model_name=model,
        business_date=day,
        status=DayStatus.scored,
        version=chosen,
        version_source=source,
        rows=result.rows,
        failures=result.champion.failures,
        kpi=result.kpi,
        value=result.champion.metric,
        max_psi=round(result.champion_report.max_psi, 6),
        detail=result.predictions_path,
    )


def summary(rows: list[BackfillDay]) -> str:
    """One paragraph on what a backfill did: counts per outcome, then every date that was not scored
    (missing data and failures first, with their reasons; days outside the calendar by name)."""
    counts = {s: sum(r.status is s for r in rows) for s in DayStatus}
    parts = [f"{n} {s.value.replace('_', ' ')}" for s, n in counts.items() if n]
    text = f"{len(rows)} (model, date): " + ", ".join(parts)
    for status, label in (
        (DayStatus.failed, "failed"),
        (DayStatus.no_data, "no data"),
        (DayStatus.no_version, "no version"),
    ):
        bad = [r for r in rows if r.status is status]
        if bad:
            text += f". {label}: " + "; ".join(f"{r.model_name} {r.business_date}: {r.detail}" for r in bad[:10])
            text += f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
    off = [r for r in rows if r.status is DayStatus.not_business_day]
    if off:
        text += ". not business days: " + ", ".join(sorted({r.business_date.isoformat() for r in off}))
    return text

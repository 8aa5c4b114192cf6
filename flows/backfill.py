"""``backfill``: re-run the EOD scoring of a range of business dates, queue ``bulk`` (manual, event or interval).

Without dates it takes the previous weekday of its scheduled time (Europe/Zurich), so an interval
schedule needs no parameters. Without ``model_name`` it re-scores every model of the manifest that
declares its ``current_inputs``. Calls the capacity gateway first: backfills wait while EOD scoring runs
or is due, during change freezes and maintenance, and until their upstreams are done.

Each (model, date) is scored once (``releasegate.services.backfill``): with the version that was
champion on that date per the decision log, or the ``version`` named; a date an earlier run already
scored is skipped, so a killed or retried backfill resumes where it stopped. Progress: a log line and a
Prefect progress artifact per date; the result: a table artifact ``backfill-<model>``. A date that could
not be scored (a missing file, a missing column) is named in the table and fails the run at the end,
after every other date was done; the retry then re-scores only what failed.
"""

from datetime import date, timedelta
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.runtime import flow_run

from releasegate import bootstrap
from releasegate.adapters.prefect_flows import governed_flow
from releasegate.adapters.prefect_gate import gate_current_run, record_completion
from releasegate.policy.triggers import local_business_date, previous_weekday
from releasegate.services.backfill import BackfillDay, DayStatus, backfill_days, governed_models
from releasegate.slugs import artifact_key

DEPLOYMENT = "backfill"
MAX_DAYS = 366


class BackfillFailed(RuntimeError):
    """Some dates could not be scored; the others are done and will not be scored again."""


@governed_flow(DEPLOYMENT, log_prints=True)
def backfill(
    start_date: date | None = None,
    end_date: date | None = None,
    model_name: str | None = None,
    version: str | None = None,
) -> dict:
    logger = get_run_logger()
    if start_date is None and end_date is None:
        when = flow_run.scheduled_start_time or bootstrap.clock().now()
        start_date = end_date = previous_weekday(local_business_date(when, "Europe/Zurich"))
    elif start_date is None or end_date is None:
        raise ValueError("start_date and end_date: give both, or neither for the previous business day")
    if end_date < start_date:
        raise ValueError(f"end_date {end_date} is before start_date {start_date}")
    if version is not None and model_name is None:
        raise ValueError("version: name the model_name the version belongs to")
    days = [start_date + timedelta(days=i) for i in range((end_date - start_date).days + 1)]
    if len(days) > MAX_DAYS:
        raise ValueError(f"a backfill covers at most {MAX_DAYS} business dates, got {len(days)}: split it")

    gate = gate_current_run(DEPLOYMENT, days)
    logger.info("backfill %s..%s admitted: %s", start_date, end_date, gate.explanation)
    models = [model_name] if model_name else governed_models()
    run_id = str(flow_run.id) if flow_run.id else "local"
    bar = create_progress_artifact(0.0, description=f"backfill {start_date}..{end_date}: {', '.join(models)}")
    assert isinstance(bar, UUID)  # the sync call inside a sync flow (async_dispatch's other branch is async)

    def progress(row: BackfillDay, done: int, total: int) -> None:
        logger.info(
            "backfill %s %s (%d/%d): %s%s%s",
            row.model_name,
            row.business_date,
            done,
            total,
            row.status.value,
            f" with v{row.version}" if row.version else "",
            f" - {row.detail}" if row.status is not DayStatus.scored and row.detail else "",
        )
        update_progress_artifact(bar, 100.0 * done / total)

    rows = backfill_days(models, days, flow_run_id=run_id, version=version, progress=progress)
    for model in models:
        mine = [r.model_dump(mode="json") for r in rows if r.model_name == model]
        create_table_artifact(
            table=mine, key=artifact_key("backfill", model), description=f"backfill {start_date}..{end_date} {model}"
        )
    counts = {s.value: sum(r.status is s for r in rows) for s in DayStatus}
    failed = [r for r in rows if r.status is DayStatus.failed]
    if failed:
        raise BackfillFailed(
            f"{len(failed)} of {len(rows)} (model, date) could not be scored; the others are done: "
            + "; ".join(f"{r.model_name} {r.business_date}: {r.detail}" for r in failed[:5])
        )
    record_completion(DEPLOYMENT, days)
    return {
        "start_date": start_date.isoformat(),
        "end_date": end_date.isoformat(),
        "days": len(days),
        "models": models,
        **counts,
        "rows": [r.model_dump(mode="json") for r in rows],
    }

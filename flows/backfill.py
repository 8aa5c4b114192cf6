"""``backfill``: re-run the EOD scoring of a range of business dates, queue ``bulk`` (manual, event or interval).

Without dates it takes the previous weekday of its scheduled time (Europe/Zurich), so an interval
schedule needs no parameters. Without ``model_name`` it re-scores every model of the manifest that
declares its ``current_inputs``. Calls the capacity gateway first: backfills wait while EOD scoring runs
or is due, during change freezes and maintenance, and until their upstreams are done.

Each (model, date) is scored once (``releasegate.services.backfill``): with the version that was
champion on that date per the decision log, or the ``version`` named; a date an earlier run already
scored is skipped, so a killed or retried backfill resumes where it stopped. Progress: a log line and a
Prefect progress artifact per date; the result: a table artifact ``backfill-<model>`` and a summary.

The range walks each model's business calendar (``calendar:`` in the manifest): a weekend day or a
holiday is ``not_business_day``, never a failure. A business date without data is ``no_data``: the run
then ends ``Completed`` named "Completed with gaps", its message the summary naming each missing date
(a rerun scores them once their files arrive). A date that could not be scored for another reason (an
unreadable file, a missing column) is named in the table and fails the run at the end with the same
summary, after every other date was done; the retry then re-scores only what failed.
"""

from datetime import date, timedelta
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.runtime import flow_run
from prefect.states import Completed, State

from releasegate import bootstrap
from releasegate.adapters.prefect_gate import gate_current_run, record_completion
from releasegate.errors import Failed
from releasegate.jobs import governed
from releasegate.policy.triggers import local_business_date, previous_weekday
from releasegate.services.backfill import BackfillDay, DayStatus, backfill_days, governed_models, summary
from releasegate.slugs import artifact_key

DEPLOYMENT = "backfill"
MAX_DAYS = 366
GAPS = "Completed with gaps"  # the state name of a run that met business dates without data


class BackfillFailed(Failed):
    """Some dates could not be scored; the others are done and will not be scored again."""


@governed(DEPLOYMENT, log_prints=True)
def backfill(
    start_date: date | None = None,
    end_date: date | None = None,
    model_name: str | None = None,
    version: str | None = None,
) -> dict | State:
    logger = get_run_logger()
    app = bootstrap.app()
    if start_date is None and end_date is None:
        when = flow_run.scheduled_start_time or app.clock.now()
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

    gate = gate_current_run(app, DEPLOYMENT, days)
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

    rows = backfill_days(app, models, days, flow_run_id=run_id, version=version, progress=progress)
    for model in models:
        mine = [r.model_dump(mode="json") for r in rows if r.model_name == model]
        create_table_artifact(
            table=mine, key=artifact_key("backfill", model), description=f"backfill {start_date}..{end_date} {model}"
        )
    counts = {s.value: sum(r.status is s for r in rows) for s in DayStatus}
    text = summary(rows)
    create_markdown_artifact(
        markdown=f"# backfill {start_date}..{end_date}\n\n{text}\n",
        key=artifact_key("backfill-summary", models[0]) if len(models) == 1 else "backfill-summary",
        description=f"backfill {start_date}..{end_date}: summary",
    )
    failed = [r for r in rows if r.status is DayStatus.failed]
    if failed:
        raise BackfillFailed(
            f"{len(failed)} of {len(rows)} (model, date) could not be scored; the others are done. {text}"
        )
    gaps = {r.business_date for r in rows if r.status is DayStatus.no_data}
    record_completion(app, DEPLOYMENT, [d for d in days if d not in gaps])
    result = {
        "start_date": start_date.isoformat(),
        "end_date": end_date.isoformat(),
        "days": len(days),
        "models": models,
        **counts,
        "summary": text,
        "rows": [r.model_dump(mode="json") for r in rows],
    }
    if gaps:
        logger.warning("backfill %s..%s met business dates without data: %s", start_date, end_date, text)
        return Completed(name=GAPS, message=text, data=result)
    logger.info("backfill %s..%s: %s", start_date, end_date, text)
    return result

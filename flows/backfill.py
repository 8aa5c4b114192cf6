"""``backfill``: reprocess a range of business dates, queue ``bulk`` (manual, event or interval).

Without dates it takes the previous weekday of its scheduled time (Europe/Zurich), so an interval
schedule needs no parameters. Calls the capacity gateway first: backfills wait while EOD scoring runs
or is due, during change freezes and maintenance, and until their upstreams are done.
"""

from datetime import date, timedelta

from prefect import get_run_logger
from prefect.runtime import flow_run

from releasegate import bootstrap
from releasegate.adapters.prefect_flows import governed_flow
from releasegate.adapters.prefect_gate import gate_current_run, record_completion
from releasegate.policy.triggers import local_business_date, previous_weekday

DEPLOYMENT = "backfill"
MAX_DAYS = 366


@governed_flow(DEPLOYMENT, log_prints=True)
def backfill(start_date: date | None = None, end_date: date | None = None) -> dict:
    logger = get_run_logger()
    if start_date is None and end_date is None:
        when = flow_run.scheduled_start_time or bootstrap.clock().now()
        start_date = end_date = previous_weekday(local_business_date(when, "Europe/Zurich"))
    elif start_date is None or end_date is None:
        raise ValueError("start_date and end_date: give both, or neither for the previous business day")
    if end_date < start_date:
        raise ValueError(f"end_date {end_date} is before start_date {start_date}")
    days = [start_date + timedelta(days=i) for i in range((end_date - start_date).days + 1)]
    if len(days) > MAX_DAYS:
        raise ValueError(f"a backfill covers at most {MAX_DAYS} business dates, got {len(days)}: split it")

    gate = gate_current_run(DEPLOYMENT, days)
    logger.info("backfill %s..%s admitted: %s", start_date, end_date, gate.explanation)
    for i, day in enumerate(days, 1):
        logger.info("backfill %s (%d/%d)", day, i, len(days))
    record_completion(DEPLOYMENT, days)
    return {"start_date": start_date.isoformat(), "end_date": end_date.isoformat(), "days": len(days)}

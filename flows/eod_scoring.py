"""``eod-scoring``: the end-of-day run, weekdays in Europe/Zurich, queue ``critical``.

Calls the capacity gateway first; records the business date as completed so that downstream runs
(upstream readiness) can go. The scoring itself (champion model, shadow/canary) is built on top of this
shell by the EOD-scoring issue.
"""

from datetime import date

from prefect import get_run_logger
from prefect.runtime import flow_run

from releasegate.adapters import context
from releasegate.adapters.prefect_flows import governed_flow
from releasegate.adapters.prefect_gate import gate_current_run, record_completion
from releasegate.triggers import local_business_date

DEPLOYMENT = "eod-scoring"


@governed_flow(DEPLOYMENT, log_prints=True)
def eod_scoring(business_date: date | None = None) -> dict:
    when = flow_run.scheduled_start_time or context.clock().now()
    day = business_date or local_business_date(when, "Europe/Zurich")
    gate = gate_current_run(DEPLOYMENT, [day])
    get_run_logger().info("EOD for business date %s admitted: %s", day, gate.explanation)
    record_completion(DEPLOYMENT, [day])
    return {"business_date": day.isoformat(), "admitted": gate.explanation}

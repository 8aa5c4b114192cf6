"""``eod-scoring``: the end-of-day run, weekdays in Europe/Zurich, queue ``critical``.

1. The capacity gateway admits (or defers) the run.
2. ``models:/prod.<model>@champion`` scores the business date's batch; a ``challenger``, when one is
   aliased, scores the same batch in shadow and serves ``canary_share`` of it. Predictions go to
   ``$RELEASEGATE_HOME/scoring/<model>/<date>/predictions.csv``; rows, failures and latency p50/p95/p99
   to the run's artifact ``eod-<model>``.
3. Monitoring (``releasegate.policy.monitoring``) and the decision tree (``releasegate.policy.scoring.judge``) give a
   verdict: monitor, plan a retrain, drop the challenger, or roll back. It is a ``monitoring`` decision
   record; a rollback starts the ``rollback`` deployment and a retrain the ``retrain`` deployment, each
   through event intake (``monitoring.*.requested@v1``: Prefect event, one run per model and date).
4. The business date is recorded as completed, so downstream runs (backfills) may go.

One run per model at a time (``runtime_policy.concurrency_limit`` held per model, not across models).
A late or unreadable file and a missing champion are retried by the runtime policy; a problem no retry
fixes (a model the manifest does not name, a missing column, an entry point that does not import) fails
the run at once. Scheduled runs come from the per-model deployments ``eod-scoring/<model>`` that
``releasegate deploy`` makes from the manifest's ``eod:`` entries.

A date outside the model's business calendar (``calendar:`` in the manifest: a weekend day, a holiday)
is not scored: the run ends ``Completed`` named "Not a business day" and the date counts as done.
"""

from datetime import date

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, State

from releasegate import bootstrap
from releasegate.adapters.data_sources import DataSourceError
from releasegate.adapters.prefect_flows import fail_without_retry
from releasegate.adapters.prefect_gate import gate_current_run, record_completion
from releasegate.adapters.prefect_locks import model_slot
from releasegate.jobs import governed
from releasegate.policy.triggers import local_business_date
from releasegate.services.eod import NoChampion, governed_spec, record_and_act, score_business_date
from releasegate.services.eod_summary import markdown, summary
from releasegate.slugs import artifact_key

DEPLOYMENT = "eod-scoring"
NOT_BUSINESS_DAY = "Not a business day"


@governed(DEPLOYMENT, own_concurrency=True, log_prints=True)
def eod_scoring(
    model_name: str,
    business_date: date | None = None,
    rows: int | None = None,
    canary_share: float = 0.1,
) -> dict | State:
    logger = get_run_logger()
    try:
        spec = governed_spec(model_name)  # before waiting for anything: no retry adds the model to the manifest
    except DataSourceError as exc:
        logger.error("%s", exc)
        return fail_without_retry(str(exc))
    # the business date of a scheduled run: the date where the model's own schedule runs
    timezone = spec.eod.timezone if spec.eod is not None else "Europe/Zurich"
    policy = eod_scoring.fn.runtime_policy  # type: ignore[attr-defined]
    with model_slot(DEPLOYMENT, model_name, policy):  # this model's slot: other models' runs never wait
        return _score(model_name, business_date, rows, canary_share, timezone)


def _score(
    model_name: str, business_date: date | None, rows: int | None, canary_share: float, timezone: str
) -> dict | State:
    logger = get_run_logger()
    app = bootstrap.app()
    when = flow_run.scheduled_start_time or app.clock.now()
    day = business_date or local_business_date(when, timezone)
    spec = governed_spec(model_name)
    why_not = spec.calendar.why_not(day)
    if why_not is not None:  # outside the model's business calendar: nothing to score, nothing failed
        logger.info("EOD %s: %s is not a business date of the model (%s)", model_name, day, why_not)
        record_completion(app, DEPLOYMENT, [day])
        return Completed(name=NOT_BUSINESS_DAY, message=f"{day} is not a business date of {model_name}: {why_not}")
    gate = gate_current_run(app, DEPLOYMENT, [day])
    logger.info("EOD for business date %s admitted: %s", day, gate.explanation)
    try:
        result = score_business_date(
            app.registry, model_name, day, home=app.settings.home_dir, rows=rows, canary_share=canary_share
        )
    except NoChampion as exc:
        logger.error("%s", exc)
        raise  # retried by the runtime policy: a version may be promoted meanwhile
    except DataSourceError as exc:
        logger.error("%s", exc)
        if exc.retryable:
            raise  # a late or half-written file: the runtime policy's retries may find it
        return fail_without_retry(str(exc))  # a missing column, an unknown model: no retry fixes it
    out = summary(result)
    logger.info(
        "scored %d rows with v%s (challenger %s, %d canary rows): %d failures, latency p50/p95/p99 %.1f/%.1f/%.1f ms",
        result.rows,
        result.champion.version,
        out["challenger_version"] or "none",
        result.canary_rows,
        result.served_failures,
        *(result.champion.latency_ms[k] for k in ("p50", "p95", "p99")),
    )
    if result.comparison:
        logger.info("shadow comparison: %s", result.comparison.model_dump())
    create_markdown_artifact(
        markdown=markdown(result), key=artifact_key("eod", model_name), description=f"EOD {day} prod.{model_name}"
    )
    acted = record_and_act(app, result, str(flow_run.id))
    logger.info(
        "monitoring verdict: %s (%s) - %s", result.verdict.action, result.verdict.reason_code, result.verdict.reason
    )
    record_completion(app, DEPLOYMENT, [day])
    return {**out, **acted, "admitted": gate.explanation}

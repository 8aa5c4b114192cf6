"""Backfill, EOD and the drift gate's newest inputs follow the model's business calendar.

The diabetes team project of ``tests/support/diabetes_team.py`` (Parquet inputs per business date, real
Prefect harness, real MLflow registry, real SQLite): the range 2026-11-16..2026-11-27 of the issue has
files for 16-20, 23 and 24; the 21st and 22nd are a weekend, the 26th a holiday in the team's manifest,
the 25th and 27th have no file. The backfill scores every business date that has data, says what each
other date is, and ends with a summary instead of ``Failed``.
"""

from datetime import date, timedelta

import yaml

from releasegate import bootstrap
from tests.support.diabetes_team import MODEL, deployed, team, two_approved_versions  # noqa: F401

START, END = date(2026, 11, 16), date(2026, 11, 27)
HOLIDAY = date(2026, 11, 26)


def _with_calendar(folder, **calendar) -> None:
    path = folder / "models.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["models"][0]["calendar"] = calendar
    path.write_text(yaml.safe_dump(doc))


def test_a_backfill_across_a_weekend_and_a_holiday_scores_business_dates_and_ends_with_a_summary(team):  # noqa: F811
    from flows.backfill import GAPS, backfill

    X, y, folder = team
    _with_calendar(folder, holidays=[HOLIDAY.isoformat()])
    v1, v2 = two_approved_versions(X, y)

    state = backfill(start_date=START, end_date=END, model_name=MODEL, return_state=True)
    assert state.is_completed() and state.name == GAPS, (state.name, state.message)
    out = state.result()
    status = {r["business_date"]: (r["status"], r["detail"]) for r in out["rows"]}
    days = [START + timedelta(days=i) for i in range((END - START).days + 1)]
    scored = [d for d in days if status[d.isoformat()][0] == "scored"]
    assert scored == [*[START + timedelta(days=i) for i in range(5)], date(2026, 11, 23), date(2026, 11, 24)]
    assert status["2026-11-21"] == ("not_business_day", "Saturday: not a business weekday")
    assert status["2026-11-22"][0] == "not_business_day" and status["2026-11-22"][1].startswith("Sunday")
    assert status[HOLIDAY.isoformat()][0] == "not_business_day" and "holiday" in status[HOLIDAY.isoformat()][1]
    for missing in ("2026-11-25", "2026-11-27"):
        assert status[missing][0] == "no_data" and f"no file for business date {missing}" in status[missing][1]
    assert out["scored"] == 7 and out["no_data"] == 2 and out["not_business_day"] == 3 and out["failed"] == 0
    # the summary, in the run's own message: counts, then each missing date with its reason
    assert "7 scored" in state.message and "2 no data" in state.message and "3 not business day" in state.message
    assert "2026-11-25" in state.message and "2026-11-27" in state.message
    assert "not business days: 2026-11-21, 2026-11-22, 2026-11-26" in state.message
    done = sorted(d for _, d in bootstrap.scheduling_store().completed([f"backfill:{MODEL}"], days))
    assert done == scored  # the missing dates stay to do: a rerun scores them once their files arrive

    # the 25th's file arrives: the rerun scores only that date; the 27th is still missing
    import shutil

    for part in ("inputs", "labels"):
        shutil.copy(folder / part / "2026-11-24.parquet", folder / part / "2026-11-25.parquet")
    again = backfill(start_date=START, end_date=END, model_name=MODEL, return_state=True)
    rerun = {r["business_date"]: r["status"] for r in again.result()["rows"]}
    assert again.name == GAPS and rerun["2026-11-25"] == "scored" and rerun["2026-11-27"] == "no_data"
    assert sum(s == "already_done" for s in rerun.values()) == 7


def test_a_backfill_without_gaps_is_a_plain_completed_run(team):  # noqa: F811
    from flows.backfill import backfill

    X, y, _ = team
    two_approved_versions(X, y)
    state = backfill(start_date=date(2026, 11, 20), end_date=date(2026, 11, 23), model_name=MODEL, return_state=True)
    assert state.is_completed() and state.name == "Completed", (state.name, state.message)
    out = state.result()
    assert out["scored"] == 2 and out["not_business_day"] == 2 and out["no_data"] == 0


def test_eod_on_a_holiday_of_the_model_is_not_a_business_day_and_scores_nothing(team):  # noqa: F811
    from flows.eod_scoring import NOT_BUSINESS_DAY, eod_scoring

    X, y, folder = team
    _with_calendar(folder, holidays=["2026-11-23"])
    two_approved_versions(X, y)
    state = eod_scoring(business_date=date(2026, 11, 23), model_name=MODEL, return_state=True)
    assert state.is_completed() and state.name == NOT_BUSINESS_DAY, (state.name, state.message)
    assert "holiday" in state.message and MODEL in state.message
    assert bootstrap.decision_log().query(kind="monitoring") == []  # nothing judged, nothing acted on
    saturday = eod_scoring(business_date=date(2026, 11, 21), model_name=MODEL, return_state=True)
    assert saturday.name == NOT_BUSINESS_DAY and "Saturday" in saturday.message


def test_the_drift_gate_reads_the_newest_business_dates_inputs(team):  # noqa: F811
    from releasegate.adapters import mlflow_registry as registry
    from releasegate.adapters.config import model_spec
    from releasegate.services.drift_measure import drift_from_profile

    X, y, folder = team
    v1, _ = two_approved_versions(X, y)
    # Sunday the 29th: the weekend and the holiday on Friday the 27th are skipped; Thursday the 26th and
    # Wednesday the 25th have no file; the newest business date with inputs is the drifted 24th, two
    # business dates before the newest one
    _with_calendar(folder, holidays=["2026-11-27"])
    spec = model_spec(MODEL)
    drift, why = drift_from_profile(registry.default(), spec, f"prod.{MODEL}", v1, date(2026, 11, 29), look_back_days=2)
    assert why is None and max(drift.values()) > 0.3  # the drifted day's inputs
    assert registry.reference_profile(f"prod.{MODEL}", v1) is not None
    none, why_not = drift_from_profile(
        registry.default(), spec, f"prod.{MODEL}", v1, date(2026, 11, 29), look_back_days=1
    )
    assert none == {} and "no file for business date 2026-11-25" in why_not

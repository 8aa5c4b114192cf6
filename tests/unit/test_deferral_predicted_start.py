"""A capacity deferral's predicted start is stored beside its next evaluation and shown by
`releasegate deferrals`; without one (recorded before, or not predicted) the next evaluation stands."""

import json
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from releasegate.cli import app

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def test_the_predicted_start_is_stored_replaced_and_listed(rg_home, monkeypatch):
    from releasegate import bootstrap

    monkeypatch.setenv("COLUMNS", "250")
    store = bootstrap.scheduling_store()
    nxt, predicted = NOW + timedelta(minutes=3), NOW + timedelta(minutes=41)
    d = store.record_deferral("run-a", "backfill", "PRIORITY_CONFLICT", nxt, "x", NOW, predicted_start_at=predicted)
    assert (d.next_evaluation_at, d.predicted_start_at) == (nxt, predicted)
    store.record_deferral("run-b", "backfill", "CAPACITY_LIMIT", nxt, "x", NOW)  # not predicted
    store.record_deferral("run-c", "scoring", "CHANGE_FREEZE", nxt, "x", NOW, predicted_start_at=predicted)

    out = CliRunner().invoke(app, ["deferrals", "--json"])
    assert out.exit_code == 0, out.output
    shown = {r["flow_run_id"]: r["predicted_start_at"] for r in json.loads(out.output)}
    assert shown == {"run-a": str(predicted), "run-b": str(nxt), "run-c": None}
    table = CliRunner().invoke(app, ["deferrals"])
    assert table.exit_code == 0 and "17:41:00" in table.output

    # a later deferral replaces the prediction (none given: none kept)
    d = store.record_deferral("run-a", "backfill", "PRIORITY_CONFLICT", nxt, "x", NOW + timedelta(minutes=3))
    assert d.predicted_start_at is None and d.attempts == 2
    assert store.get_deferral("run-a").predicted_start_at is None

"""`releasegate audit verify` checks `decision_index` against the chain, on SQLite and PostgreSQL: an
edited index neither silences nor repeats the P1 escalation of an unacknowledged gate failure, and does
not pass the audit; an intact index verifies."""

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from releasegate.cli import app
from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision
from tests.support.records import deferral, sql

runner = CliRunner()


def _lines(done) -> list[str]:
    return [line for line in done.output.splitlines() if line.strip()]


@pytest.fixture
def sealed(db_url, tmp_path, monkeypatch, clock, wide):
    """The service path's sealed log on SQLite or PostgreSQL, with the process clock faked."""
    from releasegate import bootstrap

    monkeypatch.setenv("RELEASEGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELEASEGATE_DATABASE_URL", db_url)
    with bootstrap.use_clock(clock):
        yield bootstrap.decision_log()


def _held(log, run: str):
    return log.append(
        NewDecision(
            decision_kind=DecisionKind.promotion,
            decision_outcome=DecisionOutcome.reject,
            decision_rationale="held: no better than the champion",
            subject=f"promotion:{run}",
            actor="releasegate:promotion",
            tech_gate_report_ref="artifact:r",
            details={"model_name": "credit", "candidate_version": "3", "promotion_outcome": "hold"},
        )
    )


def _seq(log, decision_id: str) -> int:
    with log.engine.connect() as conn:
        return conn.execute(text("SELECT seq FROM decisions WHERE decision_id = :d"), {"d": decision_id}).scalar_one()


def _escalated(clock) -> list[str]:
    from releasegate import bootstrap
    from releasegate.services.gate_failures import escalate_unacknowledged

    clock.advance(minutes=31)
    return [i["gate_failure"] for i in escalate_unacknowledged(bootstrap.app(), emit_event=lambda **_: None)]


@pytest.mark.parametrize(
    "edit",
    [
        "DELETE FROM decision_index WHERE seq = :seq",
        "UPDATE decision_index SET promotion_outcome = NULL WHERE seq = :seq",
        "UPDATE decision_index SET status = 'incident' WHERE seq = :seq",
        "UPDATE decision_index SET decision_timestamp = '2000-01-01T00:00:00.000000Z' WHERE seq = :seq",
        "UPDATE decision_index SET decision_kind = 'deferral' WHERE seq = :seq",
    ],
    ids=["deleted", "outcome", "status", "timestamp", "kind"],
)
def test_an_edited_index_neither_silences_the_p1_escalation_nor_passes_audit(sealed, clock, edit):
    log = sealed
    log.append(deferral(1))
    held = _held(log, "run-1")
    sql(log, edit, seq=_seq(log, held.decision_id))
    listed = runner.invoke(app, ["gate-failures", "--json"])
    assert held.decision_id in listed.stdout  # still listed: found from the sealed records
    assert _escalated(clock) == [held.decision_id]
    assert _escalated(clock) == []  # once: the incident is found from the sealed records too

    done = runner.invoke(app, ["audit", "verify"])
    assert done.exit_code == 1
    first = _lines(done)[0]
    assert first.startswith("decision log NOT verified: index tampered: decision_index row #2")
    assert held.decision_id in first and ("missing" in first or "altered" in first)


def test_an_edited_answer_in_the_index_neither_silences_nor_repeats_the_escalation(sealed, clock):
    """An acknowledgement's index row deleted: the acknowledgement still counts; an extra index row
    pointing a sealed record at the failure does not acknowledge it."""
    from releasegate import bootstrap
    from releasegate.services.gate_failures import acknowledge

    log = sealed
    acked, other = _held(log, "run-1"), _held(log, "run-2")
    ack = acknowledge(bootstrap.app(), acked.decision_id, "ml-lead", "retrain")
    sql(log, "DELETE FROM decision_index WHERE seq = :seq", seq=_seq(log, ack))
    sql(log, "UPDATE decision_index SET refers_to = :d WHERE seq = :seq", d=other.decision_id, seq=_seq(log, ack))
    sql(
        log,
        "INSERT INTO decision_index (seq, decision_kind, decision_timestamp, refers_to, subject_sha256) "
        "VALUES (99, 'gate_failure_ack', '2026-11-23T08:00:00.000000Z', :d, 'x')",
        d=other.decision_id,
    )
    assert _escalated(clock) == [other.decision_id]
    done = runner.invoke(app, ["audit", "verify"])
    assert done.exit_code == 1
    said = done.output
    assert f"decision_index row #{_seq(log, ack)} (record {ack}): missing" in said
    assert "decision_index row #99: extra: no record has this seq" in said


def test_an_intact_index_is_verified(sealed, clock):
    log = sealed
    held = _held(log, "run-1")
    log.append(deferral(1))
    done = runner.invoke(app, ["audit", "verify"])
    assert done.exit_code == 0, done.output
    assert _lines(done)[0] == "decision log intact: 2 records, hash chain verified"
    assert "decision_index verified: its 2 rows are what the records say" in done.output
    assert _escalated(clock) == [held.decision_id]

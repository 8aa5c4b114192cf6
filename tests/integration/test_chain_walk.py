"""The decision log's verify walks the chain in seq ranges, one worker process per range (SQLite and
PostgreSQL): an intact log is answered by the ranges alone, every tampering is named as the walk in
order names it, and records appended after the head was read are left to the next verify."""

import pytest
from sqlalchemy import text

from tests.support.records import deferral, sql, unguarded_log


def _rehash(log, seq):
    from sqlalchemy.orm import Session

    from releasegate.store.decision_log import DecisionRow, _content_hash_for_row

    sql(log, "UPDATE decisions SET decision_outcome = 'accept' WHERE seq = :s", s=seq)
    with Session(log.engine) as s:
        new_hash = _content_hash_for_row(s.get(DecisionRow, seq))
    sql(log, "UPDATE decisions SET record_hash = :h WHERE seq = :s", h=new_hash, s=seq)


def _insert_copy(log, seq):
    """A row inserted at ``seq`` (plain INSERT: the triggers refuse only UPDATE and DELETE), a copy of
    record 3 with its own ids and hashes."""
    cols = (
        "decision_timestamp, decision_kind, decision_outcome, decision_rationale, subject, actor, "
        "tech_gate_report_ref, pm_gate_ref, risk_gate_ref, joint_release_ack_ref, rollback_plan_ref, "
        "exception_expiry, details"
    )
    tag = f"{abs(seq):x}".rjust(2, "e")
    sql(
        log,
        f"INSERT INTO decisions (seq, decision_id, prev_hash, record_hash, {cols}) "
        f"SELECT :seq, :did, :prev, :rec, {cols} FROM decisions WHERE seq = 3",
        seq=seq,
        did=f"forged-{seq}",
        prev=tag * 32,
        rec=("d" + tag) * 16,
    )


def _rewind_head(log, seq):
    """The head moved back to record ``seq`` (its trigger dropped first, as an attacker would)."""
    with log.engine.begin() as conn:
        if log.engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS decision_log_head_advance_only"))
        else:
            conn.execute(text("DROP TRIGGER decision_log_head_guard ON decision_log_head"))
        digest = conn.execute(text("SELECT record_hash FROM decisions WHERE seq = :s"), {"s": seq}).scalar_one()
        conn.execute(
            text("UPDATE decision_log_head SET last_seq = :s, last_hash = :h WHERE id = 1"), {"s": seq, "h": digest}
        )


TAMPERS = {
    "insert at seq 0": lambda log: _insert_copy(log, 0),
    "insert at seq -1": lambda log: _insert_copy(log, -1),
    "insert after the newest, head not moved": lambda log: _insert_copy(log, 9),
    "insert far above the head": lambda log: _insert_copy(log, 50),
    "head moved back, newest rows kept": lambda log: _rewind_head(log, 6),
    "edit first of second range": lambda log: sql(log, "UPDATE decisions SET actor = 'x' WHERE seq = 5"),
    "delete last of first range": lambda log: sql(log, "DELETE FROM decisions WHERE seq = 4"),
    "delete first of second range": lambda log: sql(log, "DELETE FROM decisions WHERE seq = 5"),
    "rehashed edit before the boundary": lambda log: _rehash(log, 4),
    "delete the newest": lambda log: sql(log, "DELETE FROM decisions WHERE seq = 8"),
    "reorder across the boundary": lambda log: (
        sql(log, "UPDATE decisions SET seq = 100 WHERE seq = 4"),
        sql(log, "UPDATE decisions SET seq = 4 WHERE seq = 5"),
        sql(log, "UPDATE decisions SET seq = 5 WHERE seq = 100"),
    ),
}


def test_walk_in_ranges_answers_an_intact_log_without_the_walk_in_order(db_url, clock, monkeypatch):
    """Two processes walk 1..4 and 5..8 and meet end to end; the walk in order is not needed."""
    from releasegate.store import chain_walk

    log, _ = unguarded_log(db_url, clock, n=6)
    for details in ({"note": "Zürich – 東京", "i": 6}, {"x": 1e-07, "big": 2**70, "f": 1e16, "i": 7}):
        # non-ASCII text and numbers orjson spells otherwise than json.dumps: the reference hash decides
        log.append(deferral(0).model_copy(update={"details": {**deferral(0).details, **details}}))

    def in_order(*_):
        raise AssertionError("an intact log is answered by the ranges")

    monkeypatch.setattr(chain_walk, "walk", in_order)
    result = log.verify(workers=2)
    assert result.ok and result.checked == 8


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_walk_in_ranges_names_the_same_break_as_the_walk_in_order(db_url, clock, tamper):
    log, _ = unguarded_log(db_url, clock, n=8)
    TAMPERS[tamper](log)
    parallel, in_order = log.verify(workers=2), log.verify(workers=1)
    assert not in_order.ok and parallel == in_order


def test_walk_in_ranges_leaves_records_appended_after_the_head_was_read(db_url, clock):
    """The ranges stop at the head read first: a record appended meanwhile is the next verify's."""
    from releasegate.store.chain_walk import walk_in_ranges

    log, _ = unguarded_log(db_url, clock, n=8)
    last_seq, last_hash = log.head()
    log.append(deferral(99))
    assert walk_in_ranges(log.url, last_seq, last_hash, 3) == 8
    assert walk_in_ranges(log.url, last_seq, "0" * 64, 3) is None  # a head the chain does not reach

"""The decision log's store on real SQLite and PostgreSQL: round trip, the append-only and head guards,
tamper detection, concurrent and grouped appends, and, on PostgreSQL only, worker processes migrating a
fresh database at once and TRUNCATE refused. (The rules a record must meet: tests/unit/test_decision_log.py.)"""

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from releasegate.decisions import REF_FIELDS, DecisionKind, DecisionOutcome, NewDecision
from releasegate.store.decision_log import DecisionLog
from tests.support.records import deferral, promotion, sql, unguarded_log


def test_round_trip(db_url, clock):
    log = DecisionLog(db_url, clock=clock)
    written = log.append(promotion())
    clock.advance(minutes=5)
    second = log.append(deferral(1))
    got = log.get(written.decision_id)
    assert got == written
    assert got.decision_timestamp == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert got.decision_timestamp.tzinfo is UTC
    assert [r.decision_id for r in log.query()] == [written.decision_id, second.decision_id]
    assert [r.decision_id for r in log.query(kind="deferral")] == [second.decision_id]
    assert log.query(subject="model:prod.credit")[0].details == {"model_name": "credit", "candidate_version": "4"}
    assert log.query(since=clock.now())[0].decision_id == second.decision_id
    assert log.verify().ok and log.verify().checked == 2


def test_database_refuses_update_and_delete(db_url, clock):
    log = DecisionLog(db_url, clock=clock)
    log.append(deferral())
    for stmt in ("UPDATE decisions SET decision_rationale = 'x'", "DELETE FROM decisions"):
        with pytest.raises(Exception, match="append-only"):
            with log.engine.begin() as conn:
                conn.execute(text(stmt))
    assert log.count() == 1 and log.verify().ok


def test_verify_catches_an_edited_record(db_url, clock):
    log, ids = unguarded_log(db_url, clock)
    sql(log, "UPDATE decisions SET decision_rationale = 'nothing to see' WHERE seq = 3")
    result = log.verify()
    assert not result.ok and result.first_break.seq == 3 and result.first_break.decision_id == ids[2]
    assert "edited" in result.first_break.problem and result.checked == 2


def test_verify_catches_an_edited_details_value(db_url, clock):
    log, ids = unguarded_log(db_url, clock)
    sql(
        log,
        "UPDATE decisions SET details = :d WHERE seq = 2",
        d=json.dumps({"deferral_reason_code": "CHANGE_FREEZE", "next_evaluation_at": "x", "i": 1}),
    )
    assert log.verify().first_break.decision_id == ids[1]


def test_verify_catches_a_deleted_record(db_url, clock):
    log, ids = unguarded_log(db_url, clock)
    sql(log, "DELETE FROM decisions WHERE seq = 2")
    result = log.verify()
    assert not result.ok and result.first_break.seq == 3 and "#2" in result.first_break.problem
    assert "deleted" in result.first_break.problem


def test_verify_catches_a_deleted_newest_record(db_url, clock):
    log, _ = unguarded_log(db_url, clock)
    sql(log, "DELETE FROM decisions WHERE seq = 5")
    result = log.verify()
    assert not result.ok and "newest records were deleted" in result.first_break.problem


def test_verify_catches_reordered_records(db_url, clock):
    log, ids = unguarded_log(db_url, clock)
    sql(log, "UPDATE decisions SET seq = 100 WHERE seq = 2")
    sql(log, "UPDATE decisions SET seq = 2 WHERE seq = 3")
    sql(log, "UPDATE decisions SET seq = 3 WHERE seq = 100")
    result = log.verify()
    assert not result.ok and result.first_break.seq == 2 and result.first_break.decision_id == ids[2]


def test_verify_catches_a_rehashed_edit(db_url, clock):
    """Editing a record and recomputing its own hash still breaks the next link."""
    from sqlalchemy.orm import Session

    from releasegate.store.decision_log import DecisionRow, _content_hash_for_row

    log, ids = unguarded_log(db_url, clock)
    sql(log, "UPDATE decisions SET decision_outcome = 'accept' WHERE seq = 2")
    with Session(log.engine) as s:
        row = s.get(DecisionRow, 2)
        new_hash = _content_hash_for_row(row)
    sql(log, "UPDATE decisions SET record_hash = :h WHERE seq = 2", h=new_hash)
    result = log.verify()
    assert not result.ok and result.first_break.seq == 3


def test_concurrent_appends_keep_one_chain(db_url, clock):
    log = DecisionLog(db_url, clock=clock)
    errors = []

    def worker(t):
        try:
            for i in range(15):
                log.append(deferral(t * 100 + i))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    result = log.verify()
    assert result.ok and result.checked == 120 == log.count()


def test_a_failing_record_in_a_shared_commit_fails_alone(db_url, clock):
    """Group commit: appends of concurrent threads share a transaction; a record the database refuses
    (its decision_id exists) fails only its own caller, the others are chained and kept."""
    from sqlalchemy.exc import IntegrityError

    from releasegate.decisions import make_record
    from releasegate.store.group_commit import GroupCommit

    log = DecisionLog(db_url, clock=clock)
    first = log.append(deferral(0))
    start, outcomes = threading.Barrier(8), {}

    def worker(t):
        start.wait()
        rec = make_record(deferral(t), clock.now(), decision_id=first.decision_id if t == 3 else None)
        try:
            outcomes[t] = log.append_record(rec).seq
        except IntegrityError:
            outcomes[t] = "duplicate"

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert outcomes[3] == "duplicate"
    assert sorted(v for t, v in outcomes.items() if t != 3) == list(range(2, 9))
    result = log.verify()
    assert result.ok and result.checked == 8 == log.count()

    batches = []  # and the grouping itself: waiting writers go out together, in order
    group = GroupCommit(lambda items: (batches.append(list(items)), items)[1], lambda item: item)
    entered, gate = threading.Event(), threading.Event()

    def write(items):
        entered.set()
        gate.wait(30)
        batches.append(list(items))
        return items

    slow = GroupCommit(write, lambda item: item)
    t0 = threading.Thread(target=slow.submit, args=("lead",))
    t0.start()
    assert entered.wait(30)  # the leader is writing its batch
    waiting = [threading.Thread(target=slow.submit, args=(f"w{i}",)) for i in range(5)]
    for th in waiting:
        th.start()
    deadline = time.monotonic() + 30
    while len(slow._queue) < 5:  # all five queued behind the leader
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gate.set()
    for th in [t0, *waiting]:
        th.join(30)
    assert batches[0] == ["lead"] and sorted(batches[1]) == [f"w{i}" for i in range(5)]
    assert group.submit("alone") == "alone"


def test_a_record_already_committed_by_an_ambiguous_batch_is_answered_as_appended(db_url, clock):
    """The one-by-one retry after a failed shared batch: a record the database already holds (its batch's
    COMMIT failed on the connection, but the server committed) comes back as appended, once; a different
    record under the same decision_id is still a duplicate."""
    from sqlalchemy.exc import IntegrityError

    from releasegate.decisions import make_record
    from releasegate.store.decision_log import _write_one

    log = DecisionLog(db_url, clock=clock)
    rec = make_record(deferral(0), clock.now())
    stored = log.append_record(rec)
    again = _write_one(log.engine, rec)
    assert (again.seq, again.record_hash, again.record) == (stored.seq, stored.record_hash, rec)
    other = make_record(deferral(1), clock.now(), decision_id=rec.decision_id)
    with pytest.raises(IntegrityError):
        _write_one(log.engine, other)
    assert log.count() == 1 and log.verify().ok


def test_head_cannot_be_rewound_to_hide_deleted_newest_records(db_url, clock):
    """An attacker drops the decisions triggers, deletes the newest records and rewrites the head to the
    truncated chain: the head's own trigger refuses, and verify still names the missing records."""
    log, ids = unguarded_log(db_url, clock)  # 5 records, decisions triggers dropped as an attacker would
    with log.engine.connect() as conn:
        keep_hash = conn.execute(text("SELECT record_hash FROM decisions WHERE seq = 3")).scalar_one()
    sql(log, "DELETE FROM decisions WHERE seq > 3")
    with pytest.raises(Exception, match="decision log head only advances"):
        sql(log, "UPDATE decision_log_head SET last_seq = 3, last_hash = :h WHERE id = 1", h=keep_hash)
    with pytest.raises(Exception, match="decision log head only advances"):
        sql(log, "DELETE FROM decision_log_head")
    with pytest.raises(Exception, match="decision log head only advances"):
        sql(log, "INSERT INTO decision_log_head (id, last_seq, last_hash) VALUES (2, 3, :h)", h=keep_hash)
    with log.engine.connect() as conn:
        assert conn.execute(text("SELECT id, last_seq FROM decision_log_head")).all() == [(1, 5)]
    result = log.verify()
    assert not result.ok and result.checked == 3
    assert "newest records were deleted" in result.first_break.problem and "#4–#5" in result.first_break.problem
    assert ids[3] not in [r.decision_id for r in log.query()]


def test_head_advances_only_to_the_record_just_appended(db_url, clock):
    log = DecisionLog(db_url, clock=clock)
    log.append(deferral(0))
    with log.engine.connect() as conn:
        first_hash = conn.execute(text("SELECT record_hash FROM decisions WHERE seq = 1")).scalar_one()
    for seq, digest in (
        (2, first_hash),  # no record #2
        (1, first_hash),  # not an advance
        (0, "0" * 64),  # backwards
    ):
        with pytest.raises(Exception, match="decision log head only advances"):
            sql(log, "UPDATE decision_log_head SET last_seq = :s, last_hash = :h WHERE id = 1", s=seq, h=digest)
    second = log.append(deferral(1))  # the legitimate path still advances it
    assert log.count() == 2 and log.verify().ok and log.get(second.decision_id) == second


def test_long_subject_actor_and_refs_round_trip(db_url, clock):
    """No column of the log is shorter than what callers may write (PostgreSQL enforced VARCHAR(256))."""
    log = DecisionLog(db_url, clock=clock)
    long = "x" * 2000
    rec = log.append(
        promotion(
            subject=f"model:{long}",
            actor=f"approver:{long}",
            **{ref: f"{ref}:{long}" for ref in REF_FIELDS},
        )
    )
    assert log.get(rec.decision_id) == rec and log.verify().ok


def test_verify_quick_path_reproduces_every_hash_append_writes(db_url, clock):
    """verify computes hashes from the columns (fast) and falls back to the exact path on a mismatch:
    for what append writes the quick path must agree, or verify would be slow for nothing."""
    from sqlalchemy.orm import Session

    from releasegate.store.decision_log import DecisionRow, _quick_hash_for_row

    log = DecisionLog(db_url, clock=clock)
    log.append(deferral(0))
    clock.advance(seconds=1.5)  # a timestamp with a fraction, and then one without
    log.append(
        NewDecision(
            decision_kind=DecisionKind.override,
            decision_outcome=DecisionOutcome.override,
            decision_rationale="ticket",
            subject="flow_run:x",
            actor="ops",
            exception_expiry=clock.now() + timedelta(hours=2),
            details={"ticket_ref": "CHG-1", "nested": {"b": [1, 2.5, None], "a": "ü"}},
        )
    )
    clock.advance(seconds=0.5)
    log.append(deferral(1))
    with Session(log.engine) as s:
        rows = s.query(DecisionRow).order_by(DecisionRow.seq).all()
        assert [_quick_hash_for_row(r) for r in rows] == [r.record_hash for r in rows]
    assert log.verify().ok


@pytest.mark.postgres
def test_processes_migrating_a_fresh_postgres_log_at_once_do_not_collide(pg_url):
    """Two workers opening a new decision log together both migrate it on first use."""
    import subprocess
    import sys

    code = "import sys; from releasegate.store.db import get_engine; get_engine(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, pg_url], stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors


@pytest.mark.postgres
def test_postgres_refuses_truncate_of_the_log_and_its_head(pg_url, clock):
    log = DecisionLog(pg_url, clock=clock)
    log.append(deferral(0))
    for table, words in (("decisions", "append-only"), ("decision_log_head", "no truncate")):
        with pytest.raises(Exception, match=words):
            sql(log, f"TRUNCATE {table}")
    assert log.count() == 1 and log.verify().ok

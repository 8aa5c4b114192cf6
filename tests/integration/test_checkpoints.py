"""Signed checkpoints anchor the decision log outside its database (SQLite and PostgreSQL).

Whoever owns the database can drop its guards and then rewrite the chain consistently (recomputing every
hash) or cut its tail together with the head row: `audit verify` alone then finds an intact chain.
`audit verify --checkpoints` names both, from files written before the tampering.
"""

import json

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from releasegate.cli import app
from releasegate.store.decision_log import DecisionLog, DecisionRow, _content_hash_for_row
from tests.support.records import deferral, drop_every_guard, sql

runner = CliRunner()


def _said(done) -> str:
    return " ".join(done.output.split())  # rich wraps long lines at the runner's width


def _rehash_from(log: DecisionLog, seq: int) -> None:
    """Recompute every hash from ``seq`` on and the head: a consistent rewrite."""
    with Session(log.engine) as s:
        prev = s.get(DecisionRow, seq - 1).record_hash if seq > 1 else None
        rows = s.query(DecisionRow).filter(DecisionRow.seq >= seq).order_by(DecisionRow.seq).all()
        updates = []
        for row in rows:
            if prev is not None:
                row.prev_hash = prev
            h = _content_hash_for_row(row)
            updates.append((row.seq, row.prev_hash, h))
            prev = h
    for n, _, _ in updates:  # prev/record hashes are unique: move them out of the way first
        sql(log, "UPDATE decisions SET prev_hash = :p, record_hash = :h WHERE seq = :n", p=f"x{n}", h=f"y{n}", n=n)
    for n, p, h in updates:
        sql(log, "UPDATE decisions SET prev_hash = :p, record_hash = :h WHERE seq = :n", p=p, h=h, n=n)
    last = updates[-1]
    sql(log, "UPDATE decision_log_head SET last_seq = :n, last_hash = :h WHERE id = 1", n=last[0], h=last[2])


@pytest.fixture
def home(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("RELEASEGATE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RELEASEGATE_DATABASE_URL", db_url)
    return tmp_path


def _filled(db_url, clock, n: int) -> DecisionLog:
    log = DecisionLog(db_url, clock=clock)
    for i in range(n):
        log.append(deferral(i))
        clock.advance(minutes=1)
    return log


def _checkpoint(folder) -> str:
    done = runner.invoke(app, ["audit", "checkpoint", "--dir", str(folder)])
    assert done.exit_code == 0, done.output
    return done.output


def test_checkpoints_verify_while_the_log_grows(db_url, clock, home):
    log = _filled(db_url, clock, 3)
    out = _checkpoint(home / "cps")
    assert "checkpoint #3" in out
    [file] = (home / "cps").glob("checkpoint-*.json")
    body = json.loads(file.read_text())
    assert body["last_seq"] == 3 and body["last_hash"] == log.head()[1] and len(body["signature"]) == 128
    assert ((home / "home" / "service_ed25519.pem").stat().st_mode & 0o777) == 0o600  # the private key
    log.append(deferral(9))  # appending after a checkpoint is what a log does
    clock.advance(minutes=1)
    _checkpoint(home / "cps")
    done = runner.invoke(app, ["audit", "verify", "--checkpoints", str(home / "cps")])
    assert done.exit_code == 0, done.output
    assert "2 signed checkpoints verified" in _said(done) and "4 records" in _said(done)


def test_a_consistent_rewrite_passes_the_chain_but_not_the_checkpoints(db_url, clock, home):
    log = _filled(db_url, clock, 5)
    _checkpoint(home / "cps")
    drop_every_guard(log)
    sql(log, "UPDATE decisions SET decision_rationale = 'nothing to see' WHERE seq = 2")
    _rehash_from(log, 2)
    assert log.verify().ok  # the chain alone is fooled
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
    done = runner.invoke(app, ["audit", "verify", "--checkpoints", str(home / "cps")])
    assert done.exit_code == 1
    assert "record #5 hashes to" in _said(done) and "the log was rewritten" in _said(done)


def test_a_cut_tail_with_its_head_is_named(db_url, clock, home):
    log = _filled(db_url, clock, 5)
    _checkpoint(home / "cps")
    drop_every_guard(log)
    keep = log.hash_at(3)
    sql(log, "DELETE FROM decisions WHERE seq > 3")
    sql(log, "UPDATE decision_log_head SET last_seq = 3, last_hash = :h WHERE id = 1", h=keep)
    assert log.verify().ok  # the chain alone is fooled
    done = runner.invoke(app, ["audit", "verify", "--checkpoints", str(home / "cps")])
    assert done.exit_code == 1
    assert "the log ends at #3 but this checkpoint vouched for #5" in _said(done) and "cut" in _said(done)


def test_a_forged_or_foreign_checkpoint_is_refused(db_url, clock, home):
    _filled(db_url, clock, 2)
    _checkpoint(home / "cps")
    [file] = (home / "cps").glob("checkpoint-*.json")
    body = json.loads(file.read_text())
    body["last_seq"] = 1  # an edited checkpoint: its signature no longer matches
    file.write_text(json.dumps(body))
    done = runner.invoke(app, ["audit", "verify", "--checkpoints", str(home / "cps")])
    assert done.exit_code == 1 and "signature does not verify with the pinned service key" in _said(done)
    # a key the auditor did not pin: refused with a clear message, exit 2, no traceback
    done = runner.invoke(app, ["audit", "verify", "--checkpoints", str(home / "cps"), "--public-key", "zz"])
    assert done.exit_code == 2 and "64-hex-character public key" in _said(done)


def test_export_writes_records_with_their_proofs_and_checkpoints(db_url, clock, home):
    import hashlib

    log = _filled(db_url, clock, 3)
    _checkpoint(home / "cps")
    out = home / "log.jsonl"
    done = runner.invoke(app, ["audit", "export", "--out", str(out), "--checkpoints", str(home / "cps")])
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    records = [x for x in lines if x["type"] == "record"]
    [cp] = [x for x in lines if x["type"] == "checkpoint"]
    assert [r["seq"] for r in records] == [1, 2, 3] and cp["last_hash"] == log.head()[1]
    prev = "0" * 64
    for r in records:  # an auditor re-derives the chain offline from the export alone
        payload = json.dumps(
            {"seq": r["seq"], "prev_hash": prev, "content": r["record"]}, sort_keys=True, separators=(",", ":")
        )
        assert hashlib.sha256(payload.encode()).hexdigest() == r["record_hash"] and r["prev_hash"] == prev
        prev = r["record_hash"]
    assert prev == cp["last_hash"]

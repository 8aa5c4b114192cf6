"""Decision log: appends/s with 8 concurrent writers, and audit verify of a large log (SQLite, PostgreSQL).

Run by hand: ``.venv/bin/python bench/audit_bench.py [--records 1000000]`` (also part of ``make bench``);
``--smoke``: SQLite only, 80 appends, a log of 2,000 records, 200 signatures.

* **appends/s, 8 writers** (goal >= 500/s on PostgreSQL): 8 threads append sealed ``deferral`` records
  through ``SealedDecisionLog.append`` (validation, HMAC seal, chain link under the head-row lock, index
  row) into one log; total records / wall time. The chain is verified afterwards.
* **verify N records** (goal <= 30 s for 1 M): a log of N sealed records is built in bulk (the same
  ``make_record``/``record_hash`` as ``append``, inserted in batches; the head row is set once, so its
  advance-by-one trigger is dropped on this throw-away database), then timed: ``DecisionLog.verify`` (the
  chain walk ``audit verify`` does), the re-check of every record's service seal, and
  ``audit verify --checkpoints`` over one signed checkpoint.
* **audit verify, whole**: the CLI as an auditor runs it on that log, whose every 100th record is a signed
  PM approval: chain, the seals of the trusted kinds, every approval signature.
* **re-verify approval signatures**: what ``audit verify`` adds per signed approval (Ed25519 verify of the
  recorded statement and the checks against its record), timed over 20,000, scaled to 1 M.
PostgreSQL rows need 127.0.0.1:5432 (trust) as on project machines (``RELEASEGATE_TEST_PG``); without it
they are skipped with a note.
"""

import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Row, args, emit, isolated_home  # noqa: E402

PG_ADMIN = os.environ.get("RELEASEGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
KEY = bytes(range(32))


_APPROVER_KEY = None


def _signed_approval(i: int):
    """Every 100th record of the large log: a signed PM approval, as the promotion flow records it."""
    global _APPROVER_KEY
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision
    from releasegate.policy.handshake import Role
    from releasegate.policy.signatures import ApprovalStatement, sign

    _APPROVER_KEY = _APPROVER_KEY or Ed25519PrivateKey.generate()
    run = f"run-{i}"
    signed = sign(
        ApprovalStatement(
            model="credit",
            candidate_version=str(i),
            role=Role.pm,
            decision="approve",
            approver="pm-anna",
            reference=f"REV-{i}",
            gate_report_sha256="c" * 64,
            run_id=run,
            signed_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        _APPROVER_KEY,
    )
    return NewDecision(
        decision_kind=DecisionKind.approval,
        decision_outcome=DecisionOutcome.accept,
        decision_rationale="PM_GATE_PASS by pm-anna",
        subject=f"promotion:{run}",
        actor="pm-anna",
        tech_gate_report_ref="artifact:r",
        details={
            "role": "pm",
            "approver": "pm-anna",
            "model_name": "credit",
            "candidate_version": str(i),
            "decision": "approve",
            "reference": f"REV-{i}",
            "gate_report_sha256": "c" * 64,
            **signed.record(),
        },
    )


def _new(i: int):
    from releasegate.decisions import DecisionKind, DecisionOutcome, NewDecision

    if i % 100 == 0:
        return _signed_approval(i)
    return NewDecision(
        decision_kind=DecisionKind.deferral,
        decision_outcome=DecisionOutcome.reject,
        decision_rationale=f"CAPACITY_LIMIT: 4 runs hold the pool's 4 slots ({i})",
        subject=f"flow_run:{uuid.uuid4()}",
        actor="releasegate:capacity-gateway",
        details={"deferral_reason_code": "CAPACITY_LIMIT", "next_evaluation_at": "2026-12-02T08:00:00+00:00"},
    )


def _databases(sqlite_only: bool = False):
    """(label, url, drop) for SQLite and, when reachable (and not ``sqlite_only``), a fresh PostgreSQL
    database."""
    home = Path(os.environ["RELEASEGATE_HOME"])
    out = [("sqlite", f"sqlite:///{home / f'bench-{uuid.uuid4().hex[:6]}.db'}", None)]
    if sqlite_only:
        return out
    try:
        import psycopg

        name = f"rg_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop(name=name):
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        out.append(("postgresql", f"{base}/{name}", drop))
    except Exception as exc:  # no server here: say so in the table instead of failing the bench
        print(f"PostgreSQL not reachable ({exc.__class__.__name__}): its rows are skipped", file=sys.stderr)
    return out


def appends(url: str, writers: int = 8, per_writer: int = 250) -> float:
    from releasegate.store.trust import SealedDecisionLog

    log = SealedDecisionLog(url, key_loader=lambda: KEY)
    log.append(_new(-1))  # schema, key check
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for i in range(per_writer):
                log.append(_new(w * per_writer + i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    assert not errors, errors[:1]
    assert log.count() == writers * per_writer + 1 and log.verify().ok
    return writers * per_writer / elapsed


def build(url: str, n: int) -> None:
    """N sealed records in bulk: what N appends leave behind, without N head-row round trips."""
    from sqlalchemy import insert, text

    from releasegate.decisions import GENESIS_HASH, REF_FIELDS, make_record, record_hash
    from releasegate.store.decision_log import (
        DecisionLog,
        DecisionRow,
        IndexRow,
        format_ts,
        index_values,
        subject_digest,
    )
    from releasegate.store.trust import SEAL, seal_of

    log = DecisionLog(url)
    log.count()  # creates the schema
    with log.engine.begin() as conn:  # a throw-away database: set the head once at the end
        if log.engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS decision_log_head_advance_only"))
        else:
            conn.execute(text("DROP TRIGGER decision_log_head_guard ON decision_log_head"))
    prev, t0, batch, index = GENESIS_HASH, datetime(2026, 1, 1, tzinfo=UTC), [], []
    for seq in range(1, n + 1):
        rec = make_record(_new(seq), t0 + timedelta(seconds=seq))
        rec = rec.model_copy(update={"details": {**rec.details, SEAL: seal_of(KEY, rec)}})
        h = record_hash(seq, prev, rec.content())
        batch.append(
            {
                "seq": seq,
                "decision_id": rec.decision_id,
                "decision_timestamp": format_ts(rec.decision_timestamp),
                "decision_kind": rec.decision_kind.value,
                "decision_outcome": rec.decision_outcome.value,
                "decision_rationale": rec.decision_rationale,
                "subject": rec.subject,
                "actor": rec.actor,
                "details": rec.details,
                **{ref: getattr(rec, ref) for ref in REF_FIELDS},
                "exception_expiry": format_ts(rec.exception_expiry),
                "prev_hash": prev,
                "record_hash": h,
            }
        )
        index.append(
            {
                "seq": seq,
                "decision_kind": rec.decision_kind.value,
                "decision_timestamp": format_ts(rec.decision_timestamp),
                "subject_sha256": subject_digest(rec.subject),
                **index_values(rec.details),
            }
        )
        prev = h
        if len(batch) == 5000 or seq == n:
            with log.engine.begin() as conn:
                conn.execute(insert(DecisionRow), batch)
                conn.execute(insert(IndexRow), index)  # what append writes beside each record
            batch, index = [], []
            if seq % 100_000 == 0:
                print(f"  built {seq:,} records", file=sys.stderr)
    with log.engine.begin() as conn:
        conn.execute(
            text("UPDATE decision_log_head SET last_seq = :n, last_hash = :h WHERE id = 1"), {"n": n, "h": prev}
        )


def _audit_verify(url: str) -> float:
    """``releasegate audit verify`` as an auditor runs it (chain, seals of the trusted kinds, every
    approval signature), timed; it must pass."""
    from typer.testing import CliRunner

    from releasegate.cli import app

    env = {"RELEASEGATE_DATABASE_URL": url, "RELEASEGATE_SERVICE_KEY": KEY.hex()}
    t0 = time.perf_counter()
    done = CliRunner().invoke(app, ["audit", "verify"], env=env)
    took = time.perf_counter() - t0
    assert done.exit_code == 0 and "signed approvals" in done.output, done.output[-2000:]
    return took


def verify_times(url: str, n: int) -> tuple[float, float, float, float]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from releasegate.store.checkpoints import check, make_checkpoint, read_checkpoints, write_checkpoint
    from releasegate.store.decision_log import DecisionLog
    from releasegate.store.trust import has_valid_seal

    log = DecisionLog(url)
    t0 = time.perf_counter()
    result = log.verify()
    chain = time.perf_counter() - t0
    assert result.ok and result.checked == n, result
    t0 = time.perf_counter()
    assert all(has_valid_seal(KEY, s.record) for s in log.iter_stored(batch=5000))
    seals = time.perf_counter() - t0
    whole = _audit_verify(url)
    key = Ed25519PrivateKey.generate()
    folder = Path(os.environ["RELEASEGATE_HOME"]) / f"cps-{uuid.uuid4().hex[:6]}"
    write_checkpoint(make_checkpoint(log, key, datetime.now(UTC)), folder)
    t0 = time.perf_counter()
    assert not check(log, read_checkpoints(folder), key.public_key())
    return chain, seals, time.perf_counter() - t0, whole


def signature_checks(n: int = 20_000) -> float:
    """Seconds per 1 M signed approvals for ``audit verify``'s re-verification of each recorded
    signature (``policy.signatures.recorded_signature_problem``: statement, key id, Ed25519 verify)."""
    from releasegate.policy.signatures import recorded_signature_problem

    records = [(rec.subject, rec.details) for rec in map(_signed_approval, range(n))]
    t0 = time.perf_counter()
    bad = sum(recorded_signature_problem(subject, d) is not None for subject, d in records)
    took = time.perf_counter() - t0
    assert bad == 0
    return took / n * 1_000_000


def main() -> None:
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--records", type=int, default=1_000_000)
    known, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    a = args(__doc__.splitlines()[0])
    isolated_home()
    n = 2_000 if a.smoke else known.records
    rows = []
    for label, url, drop in _databases(sqlite_only=a.smoke):
        try:
            rate = appends(url, per_writer=10 if a.smoke else 250)
            rows.append(Row("audit", f"appends/s, 8 writers ({label})", rate, "/s", ">= 500/s on PostgreSQL", "sealed"))
            big = url.replace("bench-", "bench-big-") if label == "sqlite" else url + "_big"
            drop_big = None
            if label == "postgresql":
                import psycopg

                name = big.rsplit("/", 1)[1]
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')

                def drop_big(name=name):
                    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

            try:
                t0 = time.perf_counter()
                build(big, n)
                print(f"  {label}: built {n:,} records in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
                chain, seals, cps, whole = verify_times(big, n)
                note = f"{n:,} records"
                rows.append(
                    Row("audit", f"audit verify, whole ({label})", whole, "s", "<= 30 s for 1 M", note + ", 1 % signed")
                )
                rows.append(Row("audit", f"verify chain ({label})", chain, "s", "<= 30 s for 1 M", note))
                rows.append(Row("audit", f"re-check every seal ({label})", seals, "s", "", note))
                rows.append(Row("audit", f"verify --checkpoints, 1 file ({label})", cps, "s", "", note))
            finally:
                from releasegate.store.db import dispose_engines

                dispose_engines()
                if drop_big:
                    drop_big()
        finally:
            if drop:
                from releasegate.store.db import dispose_engines

                dispose_engines()
                drop()
    checks = 200 if a.smoke else 20_000
    per_million = signature_checks(checks)
    rows.append(Row("audit", "re-verify approval signatures", per_million, "s per 1 M", "", f"{checks:,} timed"))
    emit(rows, a.json)


if __name__ == "__main__":
    main()

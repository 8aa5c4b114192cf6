"""The decision log: append-only, hash-chained, on SQLite or PostgreSQL.

The API offers ``append``, ``get``, ``query`` and ``verify``: no update, no delete. Each record
stores the SHA-256 of its predecessor (``prev_hash``) and its own (``record_hash``, over its position,
``prev_hash`` and its canonical content), and a one-row head table remembers the newest link. Database
triggers refuse UPDATE and DELETE on the table; ``verify`` catches whoever goes around them (a record
edited, deleted or reordered in raw SQL) and names the first record where the chain breaks. The head
row is guarded too (migration 0004): it cannot be deleted or duplicated, and it only advances by one,
to the record just appended, so deleting the newest records cannot be hidden by rewinding the head.

Concurrent appenders are serialised by the head row (``SELECT … FOR UPDATE`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite), and ``prev_hash`` is unique, so the chain can never fork.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from releasegate.clock import Clock, SystemClock
from releasegate.decisions import (
    DecisionKind,
    DecisionRecord,
    NewDecision,
    make_record,
    record_hash,
)
from releasegate.store.chain_walk import ChainBreak as ChainBreak
from releasegate.store.chain_walk import VerifyResult as VerifyResult
from releasegate.store.chain_walk import default_workers, walk, walk_in_ranges
from releasegate.store.db import Base, get_engine
from releasegate.store.group_commit import GroupCommit
from releasegate.store.hashing import TS_FORMAT as TS_FORMAT
from releasegate.store.hashing import content_hash_for_row, quick_hash_for_row, record_of_row
from releasegate.store.hashing import format_ts as format_ts
from releasegate.store.hashing import parse_ts as parse_ts


class DecisionRow(Base):
    __tablename__ = "decisions"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    decision_id: Mapped[str] = mapped_column(String(64), unique=True)
    decision_timestamp: Mapped[str] = mapped_column(String(32))
    decision_kind: Mapped[str] = mapped_column(String(32))
    decision_outcome: Mapped[str] = mapped_column(String(16))
    decision_rationale: Mapped[str] = mapped_column(Text)
    # TEXT (migration 0004): no length limit below what the event contract and the callers let in.
    subject: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    tech_gate_report_ref: Mapped[str | None] = mapped_column(Text)
    pm_gate_ref: Mapped[str | None] = mapped_column(Text)
    risk_gate_ref: Mapped[str | None] = mapped_column(Text)
    joint_release_ack_ref: Mapped[str | None] = mapped_column(Text)
    rollback_plan_ref: Mapped[str | None] = mapped_column(Text)
    exception_expiry: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    record_hash: Mapped[str] = mapped_column(String(64), unique=True)

    def to_record(self) -> DecisionRecord:
        return record_of_row(self)


class IndexRow(Base):
    """What readers look records up by, taken from ``details`` when a record is appended (migration 0005).

    Not part of the hashed content: it only finds records; readers still read (and, for trusted kinds,
    check the seal of) the record itself. ``refers_to`` is the decision a record answers: the pending
    promotion it ends, the gate failure it acknowledges or escalates."""

    __tablename__ = "decision_index"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    decision_kind: Mapped[str] = mapped_column(String(32))
    decision_timestamp: Mapped[str] = mapped_column(String(32))
    model_name: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str | None] = mapped_column(String(32))
    promotion_outcome: Mapped[str | None] = mapped_column(String(16))
    refers_to: Mapped[str | None] = mapped_column(String(64))
    subject_sha256: Mapped[str] = mapped_column(String(64))  # subjects are TEXT: index their digest


def subject_digest(subject: str) -> str:
    return hashlib.sha256(subject.encode()).hexdigest()


SUBJECTS_PER_QUERY = 500  # SQLite before 3.32 binds at most 999 parameters per statement

REFERS_TO_KEYS = ("pending_decision_id", "acknowledged_decision_id", "incident_for")


def index_values(details: dict[str, Any]) -> dict[str, str | None]:
    """The ``decision_index`` columns of a record's ``details`` (shared with migration 0005's backfill)."""

    def text(key: str, limit: int | None = None) -> str | None:
        value = details.get(key)
        if not isinstance(value, str | int) or isinstance(value, bool):
            return None
        s = str(value)
        return s if limit is None or len(s) <= limit else None

    refers = next((text(k, 64) for k in REFERS_TO_KEYS if text(k, 64)), None)
    return {
        "model_name": text("model_name"),
        "status": text("status", 32),
        "role": text("role", 32),
        "promotion_outcome": text("promotion_outcome", 16),
        "refers_to": refers,
    }


class HeadRow(Base):
    __tablename__ = "decision_log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True)
class StoredDecision:
    seq: int
    record: DecisionRecord
    prev_hash: str
    record_hash: str


# Older names of the hashing helpers (now in ``store.hashing``), kept for callers outside the package.
_content_hash_for_row = content_hash_for_row
_quick_hash_for_row = quick_hash_for_row


class DecisionLog:
    """Append-only store of decision records."""

    def __init__(self, url: str, clock: Clock | None = None):
        self.url = url
        self.engine = get_engine(url)
        self.clock = clock or SystemClock()

    # -- writing -------------------------------------------------------------------------------
    def append(self, new: NewDecision, now: datetime | None = None) -> DecisionRecord:
        """Validate ``new`` (raising ``DecisionRefused``), then append it to the chain."""
        record = make_record(new, now or self.clock.now())
        return self.append_record(record).record

    def append_record(self, record: DecisionRecord) -> StoredDecision:
        """Chain ``record`` to the log. Concurrent appends of this process share one transaction
        (``store.group_commit``); each record still advances the head by one."""
        return _group_commit(self.engine).submit(record)

    # -- reading -------------------------------------------------------------------------------
    def get(self, decision_id: str) -> DecisionRecord | None:
        with Session(self.engine) as session:
            row = session.execute(
                select(DecisionRow).where(DecisionRow.decision_id == decision_id)
            ).scalar_one_or_none()
            return row.to_record() if row else None

    def query(
        self,
        kind: DecisionKind | str | None = None,
        subject: str | None = None,
        subject_prefix: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        subjects: Iterable[str] | None = None,
    ) -> list[DecisionRecord]:
        """Records in log order (``newest_first``: reversed). ``subjects``: the records of any of these
        subjects in one read (an inbox restores every listed run at once), asked in chunks of
        ``SUBJECTS_PER_QUERY`` so a long list stays under the database's limit of bound parameters."""
        chunks: list[list[str] | None] = [None]
        if subjects is not None:
            wanted = list(dict.fromkeys(subjects))
            if not wanted:
                return []
            chunks = [wanted[i : i + SUBJECTS_PER_QUERY] for i in range(0, len(wanted), SUBJECTS_PER_QUERY)]
        rows: list[DecisionRow] = []
        with Session(self.engine) as session:
            for chunk in chunks:
                stmt = select(DecisionRow)
                if kind is not None:
                    stmt = stmt.where(DecisionRow.decision_kind == DecisionKind(kind).value)
                if subject is not None:
                    stmt = stmt.where(DecisionRow.subject == subject)
                if chunk is not None:
                    stmt = stmt.where(DecisionRow.subject.in_(chunk))
                if subject_prefix is not None:
                    stmt = stmt.where(DecisionRow.subject.startswith(subject_prefix, autoescape=True))
                if since is not None:
                    stmt = stmt.where(DecisionRow.decision_timestamp >= format_ts(since))
                stmt = stmt.order_by(DecisionRow.seq.desc() if newest_first else DecisionRow.seq)
                if limit is not None:
                    stmt = stmt.limit(limit)
                rows.extend(session.execute(stmt).scalars())
            if len(chunks) > 1:  # each chunk came in order: merge them
                rows.sort(key=lambda row: row.seq, reverse=newest_first)
                rows = rows[:limit] if limit is not None else rows
            return [row.to_record() for row in rows]

    def count(self) -> int:
        with Session(self.engine) as session:
            return session.execute(select(HeadRow.last_seq).where(HeadRow.id == 1)).scalar_one()

    def head(self) -> tuple[int, str]:
        """The log's head: (last seq, last record hash); (0, genesis hash) when empty."""
        with Session(self.engine) as session:
            head = session.execute(select(HeadRow).where(HeadRow.id == 1)).scalar_one()
            return head.last_seq, head.last_hash

    def hash_at(self, seq: int) -> str | None:
        """The stored hash of record ``seq`` (None: no such record)."""
        with Session(self.engine) as session:
            return session.execute(select(DecisionRow.record_hash).where(DecisionRow.seq == seq)).scalar_one_or_none()

    def seqs_of(self, decision_ids: Iterable[str]) -> dict[str, int]:
        """The seq of each of ``decision_ids`` the log holds (by the unique decision_id column)."""
        wanted, out = sorted(set(decision_ids)), {}
        for i in range(0, len(wanted), 500):
            with Session(self.engine) as session:
                chunk = wanted[i : i + 500]
                rows = session.execute(
                    select(DecisionRow.decision_id, DecisionRow.seq).where(DecisionRow.decision_id.in_(chunk))
                )
                out.update({did: seq for did, seq in rows})
        return out

    def iter_stored(self, batch: int = 1000, after: int = 0, until: int | None = None) -> Iterator[StoredDecision]:
        """Every record in chain order with its hashes (those after seq ``after`` up to ``until``), read in
        batches (for exports of large logs)."""
        while True:
            stmt = select(DecisionRow).where(DecisionRow.seq > after)
            if until is not None:
                stmt = stmt.where(DecisionRow.seq <= until)
            with Session(self.engine) as session:
                rows = list(session.execute(stmt.order_by(DecisionRow.seq).limit(batch)).scalars())
                stored = [StoredDecision(r.seq, r.to_record(), r.prev_hash, r.record_hash) for r in rows]
            if not stored:
                return
            yield from stored
            after = stored[-1].seq

    # -- verifying -----------------------------------------------------------------------------
    def verify(self, workers: int | None = None) -> VerifyResult:
        """Walk the chain in order; name the first record that was edited, deleted or reordered.

        A long chain (``chain_walk.PARALLEL_FROM`` records) is first walked in seq ranges on every core
        (``workers`` processes; default one per core, at most 4) when the table holds exactly the seqs
        1..head; on any finding, or with ``workers=1``, the walk in order decides and names the break."""
        if workers != 1:
            # The head and the seqs the table holds, in one statement (one snapshot): the ranges walk
            # 1..last_seq, so they are used only when the table holds exactly those seqs; a row outside
            # them (inserted below 1 or above the head, a head moved back) or an append meanwhile leaves
            # the answer to the walk in order.
            table = DecisionRow.__table__
            seqs = [
                select(f).select_from(table).scalar_subquery()
                for f in (func.count(), func.min(table.c.seq), func.max(table.c.seq))
            ]
            with Session(self.engine) as session:
                last_seq, last_hash, count, low, high = session.execute(
                    select(HeadRow.last_seq, HeadRow.last_hash, *seqs).where(HeadRow.id == 1)
                ).one()
            n = default_workers(last_seq) if workers is None else workers
            exact = count == last_seq and (count == 0 or (low == 1 and high == last_seq))
            if n > 1 and exact and (intact := walk_in_ranges(self.url, last_seq, last_hash, n)) is not None:
                return VerifyResult(intact, None)
        with Session(self.engine) as session:
            # plain rows, not ORM objects: a third of the time of a million-record walk
            table = DecisionRow.__table__
            rows: Iterable[Any] = session.execute(
                select(table).order_by(table.c.seq), execution_options={"yield_per": 5000}
            )  # streamed (a server-side cursor on PostgreSQL), not all in memory
            head = session.execute(select(HeadRow).where(HeadRow.id == 1)).scalar_one()
            return walk(rows, head)


def _append_in(session: Session, head: HeadRow, record: DecisionRecord) -> StoredDecision:
    seq = head.last_seq + 1
    content = record.content()
    digest = record_hash(seq, head.last_hash, content)
    session.add(
        DecisionRow(
            seq=seq,
            decision_id=record.decision_id,
            decision_timestamp=format_ts(record.decision_timestamp),
            decision_kind=record.decision_kind.value,
            decision_outcome=record.decision_outcome.value,
            decision_rationale=record.decision_rationale,
            subject=record.subject,
            actor=record.actor,
            tech_gate_report_ref=record.tech_gate_report_ref,
            pm_gate_ref=record.pm_gate_ref,
            risk_gate_ref=record.risk_gate_ref,
            joint_release_ack_ref=record.joint_release_ack_ref,
            rollback_plan_ref=record.rollback_plan_ref,
            exception_expiry=format_ts(record.exception_expiry),
            details=content["details"],
            prev_hash=head.last_hash,
            record_hash=digest,
        )
    )
    session.add(
        IndexRow(
            seq=seq,
            decision_kind=record.decision_kind.value,
            decision_timestamp=format_ts(record.decision_timestamp),
            subject_sha256=subject_digest(record.subject),
            **index_values(content["details"]),
        )
    )
    # The record first: the head's trigger lets the head advance only, by one, to a record that exists.
    session.flush()
    prev = head.last_hash
    head.last_seq = seq
    head.last_hash = digest
    session.flush()
    return StoredDecision(seq=seq, record=record, prev_hash=prev, record_hash=digest)


def _write_batch(engine: Any, records: list[DecisionRecord]) -> list[StoredDecision]:
    """Append ``records`` in one transaction under the head-row lock, in order."""
    with Session(engine) as session, session.begin():
        stmt = select(HeadRow).where(HeadRow.id == 1)
        if engine.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        head = session.execute(stmt).scalar_one()
        return [_append_in(session, head, r) for r in records]


def _write_one(engine: Any, record: DecisionRecord) -> StoredDecision:
    """A record alone, after its shared batch failed. A batch whose COMMIT failed on the connection may
    still have been committed by the database: the record is then already in the log under its
    decision_id, and its caller gets it back as appended instead of a duplicate-key error. A different
    record under that decision_id is still refused."""
    try:
        return _write_batch(engine, [record])[0]
    except IntegrityError:
        with Session(engine) as session:
            row = session.execute(
                select(DecisionRow).where(DecisionRow.decision_id == record.decision_id)
            ).scalar_one_or_none()
            if row is None or row.to_record().content() != record.content():
                raise
            return StoredDecision(seq=row.seq, record=record, prev_hash=row.prev_hash, record_hash=row.record_hash)


_COMMITS: dict[int, tuple[Any, GroupCommit[DecisionRecord, StoredDecision]]] = {}
_COMMITS_LOCK = threading.Lock()


def _group_commit(engine: Any) -> GroupCommit[DecisionRecord, StoredDecision]:
    """One group per engine (``get_engine`` caches one per URL and process; the engine is kept beside
    its group because the id of a disposed engine may be reused)."""
    with _COMMITS_LOCK:
        known = _COMMITS.get(id(engine))
        if known is None or known[0] is not engine:
            group: GroupCommit[DecisionRecord, StoredDecision] = GroupCommit(
                lambda records: _write_batch(engine, records), lambda record: _write_one(engine, record)
            )
            known = _COMMITS[id(engine)] = (engine, group)
        return known[1]

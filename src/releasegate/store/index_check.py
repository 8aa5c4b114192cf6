"""``decision_index`` checked against the hash chain: every index row must be what ``append`` derives
from its record, one row per record, none without a record.

The index (migration 0005) is outside the chain and has no triggers: whoever can write the database can
delete, add or alter its rows without breaking a hash. Readers that act on what it finds take their
facts from the sealed records themselves (``store.views``), and ``audit verify`` names every row that
is missing, extra or altered here, so an edited index is seen even where no reader relies on it.

Both tables are read in ``seq`` order through the driver's own cursor and merged, one pass each, the
expected row computed with ``decision_log.index_values`` (the function ``append`` and migration 0005's
backfill use).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from releasegate.store.decision_log import DecisionLog, index_values

INDEX_COLUMNS = (
    "decision_kind",
    "decision_timestamp",
    "model_name",
    "status",
    "role",
    "promotion_outcome",
    "refers_to",
    "subject_sha256",
)
MAX_NAMED = 20  # findings named one by one; the rest are counted


@dataclass(frozen=True)
class IndexFinding:
    seq: int
    decision_id: str | None
    problem: str

    def __str__(self) -> str:
        of = f" (record {self.decision_id})" if self.decision_id else ""
        return f"decision_index row #{self.seq}{of}: {self.problem}"


@dataclass(frozen=True)
class IndexCheck:
    rows: int  # index rows read
    findings: list[IndexFinding]  # at most MAX_NAMED
    total: int  # every finding, named or not

    @property
    def ok(self) -> bool:
        return self.total == 0


def _details(raw: Any, exact: bool = False) -> dict[str, Any]:
    if isinstance(raw, str | bytes):
        raw = json.loads(raw) if exact else orjson.loads(raw)
    return raw if isinstance(raw, dict) else {}


def expected_row(kind: str, ts: str, subject: str, details: dict[str, Any]) -> tuple[Any, ...]:
    """The index columns (``INDEX_COLUMNS`` order) ``append`` writes for a record."""
    v = index_values(details)
    digest = hashlib.sha256(subject.encode()).hexdigest()
    return (kind, ts, v["model_name"], v["status"], v["role"], v["promotion_outcome"], v["refers_to"], digest)


def _stream(conn: Any, name: str, query: str, postgres: bool) -> Iterator[tuple[Any, ...]]:
    cur = conn.cursor(name=name) if postgres else conn.cursor()
    cur.execute(query)
    while batch := cur.fetchmany(5000):
        yield from batch


def check_index(log: DecisionLog) -> IndexCheck:
    """Every ``decision_index`` row against its record: missing, extra and altered rows, oldest first."""
    postgres = log.engine.dialect.name == "postgresql"
    findings: list[IndexFinding] = []
    total = rows = 0

    def found(seq: int, decision_id: str | None, problem: str) -> None:
        nonlocal total
        total += 1
        if len(findings) < MAX_NAMED:
            findings.append(IndexFinding(seq, decision_id, problem))

    conn = log.engine.raw_connection()
    try:
        records = _stream(
            conn,
            "index_check_records",
            "SELECT seq, decision_id, decision_kind, decision_timestamp, subject, details FROM decisions ORDER BY seq",
            postgres,
        )
        columns = ", ".join(INDEX_COLUMNS)
        index = _stream(conn, "index_check_rows", f"SELECT seq, {columns} FROM decision_index ORDER BY seq", postgres)
        rec, row = next(records, None), next(index, None)
        while rec is not None or row is not None:
            if row is None or (rec is not None and rec[0] < row[0]):
                assert rec is not None
                found(rec[0], rec[1], "missing: the record has no index row")
                rec = next(records, None)
            elif rec is None or row[0] < rec[0]:
                found(row[0], None, "extra: no record has this seq")
                rows += 1
                row = next(index, None)
            else:
                seq, decision_id, kind, ts, subject, raw = rec
                stored = tuple(row[1:])
                try:
                    want = expected_row(kind, ts, subject, _details(raw))
                    if want != stored:  # orjson reads an integer beyond 64 bits as a float: json decides
                        want = expected_row(kind, ts, subject, _details(raw, exact=True))
                except (ValueError, TypeError):
                    want = None
                if want is None:
                    found(seq, decision_id, "its record's details are unreadable")
                elif want != stored:
                    diff = [
                        f"{c} is {s!r}, the record says {w!r}"
                        for c, s, w in zip(INDEX_COLUMNS, stored, want, strict=True)
                        if s != w
                    ]
                    found(seq, decision_id, "altered: " + "; ".join(diff))
                rows += 1
                rec, row = next(records, None), next(index, None)
    finally:
        conn.rollback()
        conn.close()
    return IndexCheck(rows, findings, total)

"""Walking the decision log's hash chain: in order in one process, or in seq ranges on several cores.

``walk`` is the reference: it reads every record in chain order and names the first one edited, deleted
or reordered. A record's check needs only the record itself and its predecessor's stored hash, so a long
chain can be cut into seq ranges walked side by side (``walk_in_ranges``): each range checks its records
(no gap, each links to the one before, each hash reproduces its content) and reports its first link and
last hash; the ranges must then meet end to end, from the genesis hash to the head. That answers only
"intact, N records" quickly: on any finding it returns None and ``DecisionLog.verify`` walks the whole
chain in order, so a tampered log is always named by the reference walk, word for word.

Why by hand: neither SQLite nor PostgreSQL verifies a hash chain, and a single Python process walks
about 50,000 records a second (reading, canonical JSON, SHA-256); an auditor's 1 M-record log then takes
~20 s on one core of a two-core machine, the goal is 30 s for the whole ``audit verify``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Any

import orjson

from releasegate.decisions import GENESIS_HASH
from releasegate.store.db import create_db_engine
from releasegate.store.hashing import CONTENT_COLUMNS, content_from_columns, content_hash_for_row, quick_hash_for_row


@dataclass(frozen=True)
class ChainBreak:
    seq: int | None
    decision_id: str | None
    problem: str

    def __str__(self) -> str:
        where = f"record #{self.seq} ({self.decision_id})" if self.seq is not None else "the log"
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


# below this many records the processes' start-up (imports, ~1 s each) costs more than it saves
PARALLEL_FROM = 200_000
MAX_WORKERS = 4


def default_workers(records: int) -> int:
    """How many processes walk a chain of ``records``: one per core (at most 4) for a long chain."""
    if records < PARALLEL_FROM:
        return 1
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def walk(rows: Iterable[Any], head: Any) -> VerifyResult:
    """The chain in order against the head row: the number of intact records and the first break."""
    prev_hash, expected_seq, checked = GENESIS_HASH, 1, 0
    for row in rows:
        if row.seq != expected_seq:
            missing = f"#{expected_seq}" if row.seq == expected_seq + 1 else f"#{expected_seq}–#{row.seq - 1}"
            return VerifyResult(
                checked, ChainBreak(row.seq, row.decision_id, f"record {missing} before it was deleted")
            )
        if row.prev_hash != prev_hash:
            return VerifyResult(
                checked,
                ChainBreak(
                    row.seq,
                    row.decision_id,
                    "its predecessor link does not match the record before it (records deleted or reordered)",
                ),
            )
        try:
            intact = _hash_matches(row)
        except Exception as exc:  # a value edited into something that no longer parses
            return VerifyResult(checked, ChainBreak(row.seq, row.decision_id, f"was edited: unreadable ({exc})"))
        if not intact:
            return VerifyResult(
                checked, ChainBreak(row.seq, row.decision_id, "was edited: its content no longer matches its hash")
            )
        prev_hash = row.record_hash
        expected_seq += 1
        checked += 1
    if head.last_seq != checked or head.last_hash != prev_hash:
        if head.last_seq > checked + 1:
            missing = f" (#{checked + 1}–#{head.last_seq})"
        elif head.last_seq == checked + 1:
            missing = f" (#{head.last_seq})"
        else:
            missing = ""
        return VerifyResult(
            checked,
            ChainBreak(
                head.last_seq,
                None,
                f"the log's head expects {head.last_seq} records but the chain holds {checked}: "
                f"the newest records were deleted{missing}",
            ),
        )
    return VerifyResult(checked, None)


def _hash_matches(row: Any) -> bool:
    """Whether the row's content reproduces its stored hash: the quick computation from the columns,
    and the exact pydantic path whenever the quick one disagrees (it decides)."""
    stored: str = row.record_hash
    if quick_hash_for_row(row) == stored:
        return True
    return content_hash_for_row(row) == stored


@dataclass(frozen=True)
class _Range:
    lo: int
    hi: int
    intact: bool  # every seq lo..hi present, linked to the one before, hash reproduced
    first_prev: str | None  # the predecessor link of record lo
    last_hash: str | None  # the hash of record hi


# The columns a range reads, by position: plain DBAPI tuples, not SQLAlchemy rows (a row's attribute
# costs ~1 µs, 16 of them a record, a third of the walk), and ``details`` as the driver gives it.
_COLUMNS = ("seq", *CONTENT_COLUMNS, "details", "prev_hash", "record_hash")
_SEQ, _DETAILS, _PREV, _HASH = (_COLUMNS.index(c) for c in ("seq", "details", "prev_hash", "record_hash"))
_CONTENT = slice(1, 1 + len(CONTENT_COLUMNS))  # the content columns, in CONTENT_COLUMNS order


def _fast_hash(t: tuple[Any, ...], details: Any) -> str | None:
    """``record_hash`` of a DBAPI tuple with orjson (sorted keys, compact, as ``record_hash``'s
    ``json.dumps`` writes them when the output is ASCII); None when it cannot tell (non-ASCII text,
    numbers orjson spells differently are caught by the hash comparison and re-checked the slow way)."""
    try:
        content = content_from_columns(t[_CONTENT], details)
        payload = orjson.dumps({"seq": t[_SEQ], "prev_hash": t[_PREV], "content": content}, option=orjson.OPT_SORT_KEYS)
    except (ValueError, TypeError):  # orjson.JSONEncodeError is a TypeError
        return None
    return hashlib.sha256(payload).hexdigest() if payload.isascii() else None


def _tuple_matches(t: tuple[Any, ...]) -> bool:
    """Whether the record reproduces its stored hash: orjson first, then the reference path."""
    raw = t[_DETAILS]
    text = isinstance(raw, str | bytes)
    try:
        if _fast_hash(t, orjson.loads(raw) if text else raw) == t[_HASH]:
            return True
    except ValueError:  # not what orjson reads: the reference path decides
        pass
    # parsed again the reference way: orjson reads an integer beyond 64 bits as a float
    values = dict(zip(_COLUMNS, t, strict=True)) | {"details": json.loads(raw) if text else raw}
    return _hash_matches(SimpleNamespace(**values))


def _walk_range(url: str, lo: int, hi: int) -> _Range:
    """Records ``lo``..``hi`` in order, in a process of their own, read through the driver's own cursor
    (not an ORM session: no migrations, and on SQLite no ``BEGIN IMMEDIATE``, which would make the
    readers queue on the write lock)."""
    engine = create_db_engine(url)
    query = f"SELECT {', '.join(_COLUMNS)} FROM decisions WHERE seq >= {int(lo)} AND seq <= {int(hi)} ORDER BY seq"
    try:
        conn = engine.raw_connection()
        try:
            # PostgreSQL: a server-side cursor, so a range streams instead of landing in memory at once
            cur = conn.cursor(name="chain_walk") if engine.dialect.name == "postgresql" else conn.cursor()
            cur.execute(query)
            expected, first_prev, prev = lo, None, None
            while batch := cur.fetchmany(5000):
                for t in batch:
                    if t[_SEQ] != expected or (prev is not None and t[_PREV] != prev) or not _tuple_matches(t):
                        return _Range(lo, hi, False, first_prev, prev)
                    if prev is None:
                        first_prev = t[_PREV]
                    prev, expected = t[_HASH], expected + 1
            return _Range(lo, hi, expected == hi + 1, first_prev, prev)
        finally:
            conn.close()
    except Exception:  # unreadable: the reference walk names it
        return _Range(lo, hi, False, None, None)
    finally:
        engine.dispose()


RANGE_TIMEOUT_SECONDS = 1800  # a range that has not answered by then counts as not intact


def walk_in_ranges(url: str, last_seq: int, last_hash: str, workers: int) -> int | None:
    """The chain up to the head (``last_seq``, ``last_hash``) walked in ``workers`` seq ranges side by
    side: the number of intact records when every range is intact and they meet end to end from the
    genesis hash to the head, else None (the caller walks in order to name the first break). The
    caller has made sure the table holds exactly the seqs 1..``last_seq`` (``DecisionLog.verify``).

    Each range runs in ``python -m releasegate.store.chain_walk`` (its job in the environment, the
    answer as JSON on stdout): a fresh interpreter, so neither the caller's ``__main__`` is imported
    again (as multiprocessing's spawn does) nor a process with threads forked. Children still running
    when this returns (an error, an interrupt, a timeout) are killed."""
    if last_seq < 1:
        return None
    step = -(-last_seq // workers)
    bounds = [(lo, min(lo + step - 1, last_seq)) for lo in range(1, last_seq + 1, step)]
    procs: list[subprocess.Popen[str]] = []
    try:
        for lo, hi in bounds:
            env = {**os.environ, JOB_ENV: json.dumps({"url": url, "lo": lo, "hi": hi})}
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "releasegate.store.chain_walk"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    env=env,
                )
            )
        expected_prev: str | None = GENESIS_HASH
        for p in procs:
            out, _ = p.communicate(timeout=RANGE_TIMEOUT_SECONDS)
            r = _Range(**json.loads(out)) if p.returncode == 0 else None
            if r is None or not r.intact or r.first_prev != expected_prev:
                return None
            expected_prev = r.last_hash
        return last_seq if expected_prev == last_hash else None
    except (subprocess.TimeoutExpired, OSError, ValueError, TypeError):
        return None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


JOB_ENV = "RELEASEGATE_CHAIN_RANGE"  # the range's job (URL, lo, hi): not on the command line, which ps shows

if __name__ == "__main__":  # one range, for walk_in_ranges
    job = json.loads(os.environ[JOB_ENV])
    print(json.dumps(asdict(_walk_range(job["url"], int(job["lo"]), int(job["hi"])))))

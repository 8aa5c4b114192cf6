"""Group commit: appends from several threads of one process share one transaction.

Every append to the decision log takes the head row's lock (the chain has one tip), so appends are
serialised; each one in its own transaction costs a commit (an fsync on PostgreSQL) per record, and 8
writer threads reached ~200 appends/s on PostgreSQL (bench/RESULTS.md). Here the first thread to arrive
becomes the *leader*: it takes every record queued by then, writes them in one transaction (each still
chained, indexed and advancing the head by one, as the head's trigger requires) and hands the results
back; threads arriving meanwhile queue for the next batch, whose leader is the first of them. A batch
that fails (e.g. one record's unique ``decision_id`` already exists) is rolled back and its records are
written one by one, so each caller gets exactly the outcome its own record would have had alone.
Databases and sessions are SQLAlchemy's; nothing here knows about records.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class _Slot(Generic[In, Out]):
    __slots__ = ("item", "result", "error", "done", "lead")

    def __init__(self, item: In):
        self.item = item
        self.result: Out | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.lead = False  # woken to lead the next batch, not with a result


class GroupCommit(Generic[In, Out]):
    def __init__(
        self, write_batch: Callable[[list[In]], list[Out]], write_one: Callable[[In], Out], max_batch: int = 64
    ):
        self._write_batch, self._write_one, self._max = write_batch, write_one, max_batch
        self._lock = threading.Lock()
        self._queue: list[_Slot[In, Out]] = []
        self._leading = False

    def submit(self, item: In) -> Out:
        slot: _Slot[In, Out] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            lead = not self._leading
            if lead:
                self._leading = True
        while not lead:
            slot.done.wait()
            if not slot.lead:
                return self._outcome(slot)
            slot.lead, lead = False, True
            slot.done.clear()
        self._lead()
        return self._outcome(slot)

    def _lead(self) -> None:
        """Write one batch (it holds this thread's own record), then hand the lead to the next waiter."""
        with self._lock:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
        try:
            self._commit(batch)
        finally:
            with self._lock:
                if self._queue:
                    nxt = self._queue[0]
                    nxt.lead = True
                    nxt.done.set()
                else:
                    self._leading = False

    def _commit(self, batch: list[_Slot[In, Out]]) -> None:
        try:
            try:
                results = self._write_batch([s.item for s in batch])
            except Exception:
                for s in batch:  # alone, each gets what its own write does
                    try:
                        s.result = self._write_one(s.item)
                    except Exception as exc:
                        s.error = exc
            else:
                for s, r in zip(batch, results, strict=True):
                    s.result = r
        except BaseException:  # interrupted (or a bug above): every waiter still gets an answer
            for s in batch:
                if s.result is None and s.error is None:
                    s.error = RuntimeError("the shared write was interrupted; the record may not be appended")
            raise
        finally:
            for s in batch:
                s.done.set()

    @staticmethod
    def _outcome(slot: _Slot[In, Out]) -> Out:
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result

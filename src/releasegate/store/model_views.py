"""Read views of the decision log for the console's model pages (``services.model_pages``): every
question asked through an index (``decision_index`` by model name, the ``decisions`` table by subject
or kind), never a scan of the whole log.

* ``by_model(models, kinds, ...)``: records whose details name one of ``models`` (``decision_index``);
* ``by_subject(subjects, kinds)``: records of these subjects (``decisions.subject``);
* ``unexpired_exceptions(now)``: exceptions (kind ``override`` on a ``model:<name>:v<version>``
  subject) whose expiry is after ``now`` (few: an exception is rare and short-lived);
* ``answered(ids)``: which of these decisions a later record answers (``refers_to``: acknowledged,
  escalated).

The index finds records; the seal is the trust: callers that act on a record check
``SealedDecisionLog.is_trusted``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from releasegate.decisions import DecisionKind, DecisionRecord
from releasegate.store.decision_log import SUBJECTS_PER_QUERY, DecisionLog, DecisionRow, IndexRow, format_ts


def _chunks(values: Iterable[str]) -> list[list[str]]:
    wanted = list(dict.fromkeys(values))
    return [wanted[i : i + SUBJECTS_PER_QUERY] for i in range(0, len(wanted), SUBJECTS_PER_QUERY)]


def _read(log: DecisionLog, statements: list[Select[tuple[DecisionRow]]]) -> list[DecisionRecord]:
    rows: dict[int, DecisionRow] = {}
    with Session(log.engine) as session:
        for stmt in statements:
            for row in session.execute(stmt).scalars():
                rows[row.seq] = row
        return [rows[seq].to_record() for seq in sorted(rows)]


def by_model(
    log: DecisionLog,
    models: Collection[str],
    kinds: Collection[DecisionKind] | None = None,
    statuses: Collection[str] | None = None,
    outcomes: Collection[str] | None = None,
    newest: int | None = None,
) -> list[DecisionRecord]:
    """Records whose ``details.model_name`` is one of ``models``, in log order; ``kinds``: only these;
    ``statuses`` / ``outcomes``: only records with one of these ``status`` or ``promotion_outcome``;
    ``newest``: only the newest so many (of each chunk of models)."""
    statements = []
    for chunk in _chunks(models):
        stmt = (
            select(DecisionRow)
            .join(IndexRow, IndexRow.seq == DecisionRow.seq)
            .where(IndexRow.model_name.in_(chunk))
            .order_by(DecisionRow.seq.desc() if newest is not None else DecisionRow.seq)
        )
        if newest is not None:
            stmt = stmt.limit(newest)
        if kinds is not None:
            stmt = stmt.where(IndexRow.decision_kind.in_([k.value for k in kinds]))
        wanted = []
        if statuses:
            wanted.append(IndexRow.status.in_(list(statuses)))
        if outcomes:
            wanted.append(IndexRow.promotion_outcome.in_(list(outcomes)))
        if wanted:
            stmt = stmt.where(or_(*wanted))
        statements.append(stmt)
    return [r for r in _read(log, statements) if str(r.details.get("model_name")) in models]


def by_subject(
    log: DecisionLog,
    subjects: Iterable[str],
    kinds: Collection[DecisionKind] | None = None,
    newest: int | None = None,
) -> list[DecisionRecord]:
    """Records of any of ``subjects`` (``kinds``: only these), in log order; ``newest``: only the newest
    so many (of each chunk of subjects)."""
    statements = []
    for chunk in _chunks(subjects):
        stmt = select(DecisionRow).where(DecisionRow.subject.in_(chunk))
        stmt = stmt.order_by(DecisionRow.seq.desc() if newest is not None else DecisionRow.seq)
        if newest is not None:
            stmt = stmt.limit(newest)
        if kinds is not None:
            stmt = stmt.where(DecisionRow.decision_kind.in_([k.value for k in kinds]))
        statements.append(stmt)
    return _read(log, statements)


def unexpired_exceptions(log: DecisionLog, now: datetime) -> list[DecisionRecord]:
    """Exceptions granted for a model version (kind ``override``, subject ``model:<name>:v<version>``)
    that expire after ``now``, in log order."""
    stmt = (
        select(DecisionRow)
        .where(
            DecisionRow.decision_kind == DecisionKind.override.value,
            DecisionRow.exception_expiry > format_ts(now),
            DecisionRow.subject.startswith("model:", autoescape=True),
        )
        .order_by(DecisionRow.seq)
    )
    return _read(log, [stmt])


def answered(log: DecisionLog, decision_ids: Iterable[str]) -> set[str]:
    """The ids among ``decision_ids`` a later record refers to (an acknowledgement, an incident)."""
    found: set[str] = set()
    with Session(log.engine) as session:
        for chunk in _chunks(decision_ids):
            found.update(
                str(v)
                for v in session.execute(select(IndexRow.refers_to).where(IndexRow.refers_to.in_(chunk))).scalars()
            )
    return found

"""Typed read views of the decision log: the questions the services ask, answered through the indexed
``decision_index`` table (migration 0005) instead of scans of the whole log.

* ``promotion_of(run_id)``: the promotion records of one promotion run, in log order;
* ``model_promotions(model)``: a model's promotion records (pending, final, failed, abandoned, held);
* ``approved_prod_versions(model)``: the prod versions a sealed final promotion made champion;
* ``open_gate_failures(since)``: held or rejected promotions with whether each was acknowledged or
  escalated to an incident (both the kinds of migration 0005 and the older forms), read from the sealed
  records, not the index: what decides a P1 escalation cannot be silenced by editing the index.

The index is outside the hash chain; ``audit verify`` checks it row by row (``store.index_check``). The
views find records; trust is the seal's. ``approved_prod_versions`` and ``open_gate_failures`` take
only records with a valid service seal (``SealedDecisionLog.is_trusted``); callers of the others that act
on trusted kinds filter the same way (``services.promotion_log``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from releasegate.decisions import DecisionKind, DecisionRecord
from releasegate.store.decision_log import DecisionLog, DecisionRow, IndexRow, format_ts, subject_digest
from releasegate.store.trust import SealedDecisionLog

PROMOTION_SUBJECT = "promotion:{run_id}"


@dataclass(frozen=True)
class GateFailure:
    decision_id: str
    at: datetime
    subject: str
    model_name: str | None
    candidate_version: str | None
    outcome: str  # hold | reject
    report: str | None
    rationale: str
    acknowledged: bool
    escalated: bool


def _records(log: DecisionLog, stmt: Select[tuple[DecisionRow]]) -> list[DecisionRecord]:
    with Session(log.engine) as session:
        return [row.to_record() for row in session.execute(stmt).scalars()]


def _joined() -> Select[tuple[DecisionRow]]:
    return select(DecisionRow).join(IndexRow, IndexRow.seq == DecisionRow.seq).order_by(DecisionRow.seq)


def promotion_of(log: DecisionLog, run_id: str) -> list[DecisionRecord]:
    subject = PROMOTION_SUBJECT.format(run_id=run_id)
    stmt = _joined().where(
        IndexRow.subject_sha256 == subject_digest(subject),
        IndexRow.decision_kind == DecisionKind.promotion.value,
        DecisionRow.subject == subject,
        DecisionRow.decision_kind == DecisionKind.promotion.value,
    )
    return _records(log, stmt)


def model_promotions(log: DecisionLog, model: str) -> list[DecisionRecord]:
    stmt = _joined().where(IndexRow.decision_kind == DecisionKind.promotion.value, IndexRow.model_name == model)
    return [
        r
        for r in _records(log, stmt)
        if r.decision_kind is DecisionKind.promotion and r.details.get("model_name") == model
    ]


def approved_prod_versions(log: SealedDecisionLog, model: str) -> list[str]:
    """Prod versions of ``model`` a sealed final promotion made champion, oldest first, each once."""
    finals = [
        r
        for r in _records(
            log,
            _joined().where(
                IndexRow.decision_kind == DecisionKind.promotion.value,
                IndexRow.model_name == model,
                IndexRow.status == "final",
            ),
        )
        # the index only found them: the sealed record itself must say final
        if log.is_trusted(r) and r.details.get("status") == "final" and r.details.get("prod_version")
    ]
    return list(dict.fromkeys(str(r.details["prod_version"]) for r in finals))


_ANSWER_KINDS = (
    DecisionKind.gate_failure_ack.value,
    DecisionKind.incident.value,
    DecisionKind.approval.value,  # acknowledgements before 0005
    DecisionKind.promotion.value,  # incidents before 0005
)


def open_gate_failures(log: SealedDecisionLog, since: datetime) -> list[GateFailure]:
    """Held or rejected promotions since ``since`` and whether each was acknowledged or escalated.

    Read from the sealed records themselves (the ``decisions`` table, by its kind column and the records'
    own timestamps), never through ``decision_index``: the index is outside the chain, and a deleted or
    altered index row must not silence a P1 escalation (``audit verify`` names such a row). Only sealed
    records count, failures and answers alike: a forged acknowledgement or incident (written around the
    service path) must not silence an escalation either."""
    in_window = (
        select(DecisionRow)
        .where(DecisionRow.decision_kind.in_(_ANSWER_KINDS), DecisionRow.decision_timestamp >= format_ts(since))
        .order_by(DecisionRow.seq)
    )
    # failures and their answers: an answer is written after the failure it answers, so inside the window
    window = [r for r in _records(log, in_window) if log.is_trusted(r)]
    failures = [
        r
        for r in window
        if r.decision_kind is DecisionKind.promotion
        and r.details.get("promotion_outcome") in ("hold", "reject")
        and r.details.get("status") != "incident"
    ]
    if not failures:
        return []
    acked = {
        r.details.get("acknowledged_decision_id")
        for r in window
        if r.decision_kind is DecisionKind.gate_failure_ack
        or (r.decision_kind is DecisionKind.approval and r.details.get("role") == "gate_failure_ack")  # before 0005
    }
    escalated = {
        r.details.get("incident_for")
        for r in window
        if r.decision_kind is DecisionKind.incident
        or (r.decision_kind is DecisionKind.promotion and r.details.get("status") == "incident")  # before 0005
    }
    return [
        GateFailure(
            decision_id=f.decision_id,
            at=f.decision_timestamp,
            subject=f.subject,
            model_name=f.details.get("model_name"),
            candidate_version=f.details.get("candidate_version"),
            outcome=str(f.details.get("promotion_outcome")),
            report=f.tech_gate_report_ref,
            rationale=f.decision_rationale,
            acknowledged=f.decision_id in acked,
            escalated=f.decision_id in escalated,
        )
        for f in failures
    ]

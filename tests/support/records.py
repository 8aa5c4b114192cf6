"""Decision records for tests, and what a database owner can do to the log behind its guards."""

from sqlalchemy import text

from releasegate.decisions import REF_FIELDS, DecisionKind, DecisionOutcome, NewDecision
from releasegate.store.decision_log import DecisionLog


def deferral(i: int = 0) -> NewDecision:
    return NewDecision(
        decision_kind=DecisionKind.deferral,
        decision_outcome=DecisionOutcome.reject,
        decision_rationale=f"backfill waits for EOD ({i})",
        subject=f"flow_run:run-{i}",
        actor="releasegate:capacity-gateway",
        details={"deferral_reason_code": "PRIORITY_CONFLICT", "next_evaluation_at": "2026-11-23T08:05:00Z", "i": i},
    )


def promotion(**overrides) -> NewDecision:
    """An accepted promotion with every ref; ``overrides`` replace fields."""
    data = dict(
        decision_kind=DecisionKind.promotion,
        decision_outcome=DecisionOutcome.accept,
        decision_rationale="all gates passed, PM and Risk approved",
        subject="model:prod.credit",
        actor="releasegate:promotion",
        details={"model_name": "credit", "candidate_version": "4"},
        **{ref: f"{ref}:abc" for ref in REF_FIELDS},
    )
    data.update(overrides)
    return NewDecision(**data)


def sql(log: DecisionLog, statement: str, **params) -> None:
    """One raw statement in its own transaction."""
    with log.engine.begin() as conn:
        conn.execute(text(statement), params)


def drop_append_only_guard(log: DecisionLog) -> None:
    """Drop the triggers that refuse UPDATE and DELETE on ``decisions`` (the head's guard stays)."""
    if log.engine.dialect.name == "sqlite":
        sql(log, "DROP TRIGGER decisions_no_update")
        sql(log, "DROP TRIGGER decisions_no_delete")
    else:
        sql(log, "DROP TRIGGER decisions_append_only ON decisions")


def drop_every_guard(log: DecisionLog) -> None:
    """What a database owner can do: drop the append-only and head triggers."""
    if log.engine.dialect.name == "sqlite":
        for t in (
            "decisions_no_update",
            "decisions_no_delete",
            "decision_log_head_no_delete",
            "decision_log_head_single_row",
            "decision_log_head_advance_only",
        ):
            sql(log, f"DROP TRIGGER IF EXISTS {t}")
    else:
        sql(log, "DROP TRIGGER decisions_append_only ON decisions")
        sql(log, "DROP TRIGGER decision_log_head_guard ON decision_log_head")


def unguarded_log(db_url: str, clock, n: int = 5) -> tuple[DecisionLog, list[str]]:
    """A log of ``n`` deferrals a minute apart, its append-only guard dropped; the records' ids."""
    log = DecisionLog(db_url, clock=clock)
    ids = []
    for i in range(n):
        ids.append(log.append(deferral(i)).decision_id)
        clock.advance(minutes=1)
    drop_append_only_guard(log)
    return log, ids

"""guard the decision log's head row; no length limit below the event contract's

Revision ID: 0004_guard_head_and_lengths
Revises: 0003_registry_events
Create Date: 2026-11-24

1. ``decision_log_head`` had no guard: whoever dropped the ``decisions`` triggers, deleted the newest
   records and rewrote the head to the truncated chain passed ``audit verify``. Now the database
   refuses DELETE of the head row, INSERT of a second row, and any UPDATE that does not advance it by
   exactly one record that exists (``seq = NEW.last_seq``, ``record_hash = NEW.last_hash``,
   ``prev_hash = OLD.last_hash``) - which is what ``DecisionLog.append_record`` does, after flushing
   the new record. On PostgreSQL, TRUNCATE (which bypasses row triggers) is refused on both tables.
2. The event contract lets in a ``producer`` of 512 characters, written as ``actor`` =
   ``producer:<producer>`` into a VARCHAR(256): on PostgreSQL the write failed after the flow run was
   created. ``subject``, ``actor`` and the five ``*_ref`` columns become TEXT, as do
   ``event_intake.event_type`` (the contract allows 512, the column held 200) and
   ``webhook_deliveries.delivery_id`` (``event_id = "mlflow-delivery:<id>"`` may hold 512). SQLite does
   not enforce VARCHAR lengths, so nothing changes there.
"""

from alembic import op

revision = "0004_guard_head_and_lengths"
down_revision = "0003_registry_events"
branch_labels = None
depends_on = None

_HEAD_MESSAGE = "decision log head only advances by one appended record"

# The head may only move to the record just appended after it.
_ADVANCES_BY_ONE = (
    "NEW.id = OLD.id AND NEW.last_seq = OLD.last_seq + 1 AND EXISTS ("
    "SELECT 1 FROM decisions d WHERE d.seq = NEW.last_seq AND d.record_hash = NEW.last_hash "
    "AND d.prev_hash = OLD.last_hash)"
)

_REF_COLUMNS = ("tech_gate_report_ref", "pm_gate_ref", "risk_gate_ref", "joint_release_ack_ref", "rollback_plan_ref")
# (table, column, old length): widened to TEXT on PostgreSQL.
_WIDENED = (
    ("decisions", "subject", 512),
    ("decisions", "actor", 256),
    *(("decisions", c, 512) for c in _REF_COLUMNS),
    ("event_intake", "event_type", 200),
    ("webhook_deliveries", "delivery_id", 200),
)


def _alter(table: str, columns: list[str], type_: str) -> None:
    op.execute(f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {c} TYPE {type_}" for c in columns))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER decision_log_head_no_delete BEFORE DELETE ON decision_log_head "
            f"BEGIN SELECT RAISE(ABORT, '{_HEAD_MESSAGE}: no delete'); END"
        )
        op.execute(
            "CREATE TRIGGER decision_log_head_single_row BEFORE INSERT ON decision_log_head "
            "WHEN EXISTS (SELECT 1 FROM decision_log_head) "
            f"BEGIN SELECT RAISE(ABORT, '{_HEAD_MESSAGE}: one row only'); END"
        )
        op.execute(
            "CREATE TRIGGER decision_log_head_advance_only BEFORE UPDATE ON decision_log_head "
            f"WHEN NOT ({_ADVANCES_BY_ONE}) "
            f"BEGIN SELECT RAISE(ABORT, '{_HEAD_MESSAGE}'); END"
        )
        # Lengths: SQLite ignores VARCHAR(n), a longer value is stored as is; nothing to widen.
    elif bind.dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION releasegate_head_guard() RETURNS trigger AS $$ BEGIN "
            f"IF TG_OP = 'DELETE' THEN RAISE EXCEPTION '{_HEAD_MESSAGE}: no delete'; END IF; "
            f"IF TG_OP = 'TRUNCATE' THEN RAISE EXCEPTION '{_HEAD_MESSAGE}: no truncate'; END IF; "
            "IF TG_OP = 'INSERT' THEN "
            "IF EXISTS (SELECT 1 FROM decision_log_head) THEN "
            f"RAISE EXCEPTION '{_HEAD_MESSAGE}: one row only'; END IF; "
            "RETURN NEW; END IF; "
            f"IF NOT ({_ADVANCES_BY_ONE}) THEN RAISE EXCEPTION '{_HEAD_MESSAGE}'; END IF; "
            "RETURN NEW; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER decision_log_head_guard BEFORE INSERT OR UPDATE OR DELETE ON decision_log_head "
            "FOR EACH ROW EXECUTE FUNCTION releasegate_head_guard()"
        )
        op.execute(
            "CREATE TRIGGER decision_log_head_no_truncate BEFORE TRUNCATE ON decision_log_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION releasegate_head_guard()"
        )
        # Row triggers do not fire on TRUNCATE; 0001's function refuses it too.
        op.execute(
            "CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions "
            "FOR EACH STATEMENT EXECUTE FUNCTION releasegate_decisions_append_only()"
        )
        # VARCHAR -> TEXT is binary-coercible: no table rewrite, no UPDATE (the append-only trigger
        # does not fire), indexes stay valid.
        tables: dict[str, list[str]] = {}
        for table, column, _ in _WIDENED:
            tables.setdefault(table, []).append(column)
        for table, columns in tables.items():
            _alter(table, columns, "TEXT")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("no_delete", "single_row", "advance_only"):
            op.execute(f"DROP TRIGGER IF EXISTS decision_log_head_{name}")
    elif bind.dialect.name == "postgresql":
        # Fails (rather than cutting values) if a longer value was written meanwhile.
        for table, column, length in _WIDENED:
            _alter(table, [column], f"VARCHAR({length})")
        op.execute("DROP TRIGGER IF EXISTS decisions_no_truncate ON decisions")
        op.execute("DROP TRIGGER IF EXISTS decision_log_head_no_truncate ON decision_log_head")
        op.execute("DROP TRIGGER IF EXISTS decision_log_head_guard ON decision_log_head")
        op.execute("DROP FUNCTION IF EXISTS releasegate_head_guard()")

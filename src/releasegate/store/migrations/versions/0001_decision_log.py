"""decision log: append-only, hash-chained

Revision ID: 0001_decision_log
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_decision_log"
down_revision = None
branch_labels = None
depends_on = None

_GUARD_MESSAGE = "decision log is append-only"


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("decision_id", sa.String(64), nullable=False, unique=True),
        sa.Column("decision_timestamp", sa.String(32), nullable=False),
        sa.Column("decision_kind", sa.String(32), nullable=False, index=True),
        sa.Column("decision_outcome", sa.String(16), nullable=False),
        sa.Column("decision_rationale", sa.Text, nullable=False),
        sa.Column("subject", sa.String(512), nullable=False, index=True),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("tech_gate_report_ref", sa.String(512)),
        sa.Column("pm_gate_ref", sa.String(512)),
        sa.Column("risk_gate_ref", sa.String(512)),
        sa.Column("joint_release_ack_ref", sa.String(512)),
        sa.Column("rollback_plan_ref", sa.String(512)),
        sa.Column("exception_expiry", sa.String(32)),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("record_hash", sa.String(64), nullable=False, unique=True),
    )
    # The head remembers the last link, so that deleting the newest record is caught too.
    op.create_table(
        "decision_log_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.execute("INSERT INTO decision_log_head (id, last_seq, last_hash) VALUES (1, 0, '" + "0" * 64 + "')")

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER decisions_no_{action.lower()} BEFORE {action} ON decisions "
                f"BEGIN SELECT RAISE(ABORT, '{_GUARD_MESSAGE}'); END"
            )
    elif bind.dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION releasegate_decisions_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{_GUARD_MESSAGE}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions "
            "FOR EACH ROW EXECUTE FUNCTION releasegate_decisions_append_only()"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS decisions_append_only ON decisions")
        op.execute("DROP FUNCTION IF EXISTS releasegate_decisions_append_only()")
    op.drop_table("decision_log_head")
    op.drop_table("decisions")

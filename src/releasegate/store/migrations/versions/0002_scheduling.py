"""scheduling: event intake dedupe, deferrals, business-date completions

Revision ID: 0002_scheduling
Revises: 0001_decision_log
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_scheduling"
down_revision = "0001_decision_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_intake",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deployment", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(512), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("flow_run_id", sa.String(64)),
        sa.Column("received_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("deployment", "idempotency_key", name="uq_event_intake_deployment_key"),
    )
    op.create_table(
        "deferrals",
        sa.Column("flow_run_id", sa.String(64), primary_key=True),
        sa.Column("deployment", sa.String(200), nullable=False, index=True),
        sa.Column("reason_code", sa.String(32), nullable=False),
        sa.Column("first_deferred_at", sa.String(32), nullable=False),
        sa.Column("last_deferred_at", sa.String(32), nullable=False),
        sa.Column("next_evaluation_at", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("sla_state", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("closed_at", sa.String(32)),
        sa.Column("explanation", sa.Text, nullable=False),
    )
    op.create_table(
        "run_completions",
        sa.Column("deployment", sa.String(200), primary_key=True),
        sa.Column("business_date", sa.String(10), primary_key=True),
        sa.Column("flow_run_id", sa.String(64), nullable=False),
        sa.Column("completed_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_completions")
    op.drop_table("deferrals")
    op.drop_table("event_intake")

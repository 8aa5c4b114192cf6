"""registry events: webhook delivery ids (replay protection) and the registry watcher's cursor

Revision ID: 0003_registry_events
Revises: 0002_scheduling
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_registry_events"
down_revision = "0002_scheduling"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sa.String(200), primary_key=True),
        sa.Column("received_at", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
    )
    op.create_table(
        "registry_watch",
        sa.Column("registered_model", sa.String(300), primary_key=True),
        sa.Column("last_version", sa.Integer, nullable=False),
        sa.Column("staging_alias_version", sa.String(32)),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registry_watch")
    op.drop_table("webhook_deliveries")

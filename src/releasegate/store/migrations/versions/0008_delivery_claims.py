"""webhook delivery claims: an owner and a lease, so a delivery claimed but not finished is processed again

Revision ID: 0008_delivery_claims
Revises: 0005_decision_index
Create Date: 2026-12-07

A receiver that crashed between claiming a delivery id and recording what intake answered left the id
``received`` for good, and MLflow's retries of that delivery were answered 409 "replay": the delivery
was lost. A claim now names its owner and when it was taken (``claim_owner``, ``claimed_at``); a
redelivery takes over a ``received`` claim older than the lease and processes it again, and only the
owner finishes it. Existing ``received`` rows get ``claimed_at = received_at`` (stale by now).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_delivery_claims"
down_revision = "0005_decision_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("claim_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.String(32), nullable=True))
    op.execute("UPDATE webhook_deliveries SET claimed_at = received_at WHERE status = 'received'")


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claim_owner")

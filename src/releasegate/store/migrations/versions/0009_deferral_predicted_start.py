"""deferrals: the predicted start of a capacity deferral, beside its next evaluation

Revision ID: 0009_deferral_predicted_start
Revises: 0008_delivery_claims
Create Date: 2026-12-07

A capacity deferral's ``next_evaluation_at`` is when the gateway asks again; ``predicted_start_at`` is
when the run is expected to be admitted, counting the runs queued before it
(``policy.start_prediction``). Nullable: deferrals recorded before, and those of other reasons, have none
(``releasegate deferrals`` then shows the next evaluation, as before).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_deferral_predicted_start"
down_revision = "0008_delivery_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deferrals") as batch:
        batch.add_column(sa.Column("predicted_start_at", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deferrals") as batch:
        batch.drop_column("predicted_start_at")

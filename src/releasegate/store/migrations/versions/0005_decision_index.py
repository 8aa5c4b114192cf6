"""decision index: look records up by model, status, the decision they answer, their subject

Revision ID: 0005_decision_index
Revises: 0004_guard_head_and_lengths
Create Date: 2026-12-01

Readers found a model's promotions, a run's promotion and the open gate failures by scanning the whole
log and reading ``details`` in Python. ``decision_index`` holds, per record (by ``seq``), the fields
they look up by, written in the same transaction as the record (``DecisionLog.append_record``) and
backfilled here from the existing records. The ``decisions`` table and its hash chain are untouched:
the index only finds records, readers read the records themselves. Gate-failure acknowledgements and
incidents get their own kinds from now on (``gate_failure_ack``, ``incident``); the records written
before keep their kinds (``approval`` / ``promotion``: the chain covers the kind) and readers accept both.
"""

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0005_decision_index"
down_revision = "0004_guard_head_and_lengths"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from releasegate.store.decision_log import index_values

    op.create_table(
        "decision_index",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("decision_kind", sa.String(32), nullable=False),
        sa.Column("decision_timestamp", sa.String(32), nullable=False),
        sa.Column("model_name", sa.Text),
        sa.Column("status", sa.String(32)),
        sa.Column("role", sa.String(32)),
        sa.Column("promotion_outcome", sa.String(16)),
        sa.Column("refers_to", sa.String(64)),
        sa.Column("subject_sha256", sa.String(64), nullable=False),
    )
    op.create_index("ix_decision_index_kind_time", "decision_index", ["decision_kind", "decision_timestamp"])
    op.create_index("ix_decision_index_kind_model", "decision_index", ["decision_kind", "model_name"])
    op.create_index("ix_decision_index_refers_to", "decision_index", ["refers_to"])
    op.create_index("ix_decision_index_subject", "decision_index", ["subject_sha256"])

    bind = op.get_bind()
    table = sa.table(
        "decision_index",
        *(sa.column(c) for c in ("seq", "decision_kind", "decision_timestamp", "model_name", "status", "role")),
        *(sa.column(c) for c in ("promotion_outcome", "refers_to", "subject_sha256")),
    )
    rows = bind.execute(sa.text("SELECT seq, decision_kind, decision_timestamp, subject, details FROM decisions"))
    batch = []
    for seq, kind, ts, subject, details in rows:
        if isinstance(details, str):  # SQLite returns the JSON text
            details = json.loads(details)
        batch.append(
            {
                "seq": seq,
                "decision_kind": kind,
                "decision_timestamp": ts,
                "subject_sha256": hashlib.sha256(subject.encode()).hexdigest(),
                **index_values(details or {}),
            }
        )
    if batch:
        op.bulk_insert(table, batch)


def downgrade() -> None:
    op.drop_table("decision_index")

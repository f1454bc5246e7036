"""Event review: an event may keep its face embedding (with its encoder's hash), and a "not this person" correction
with who made it

Revision ID: 0011_event_review
Revises: 0010_mqtt
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_event_review"
down_revision = "0010_mqtt"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # events recorded before kept no embedding and were never corrected: every new column starts null
    with op.batch_alter_table("recognition_events") as batch:
        batch.add_column(sa.Column("embedding", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("encoder_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("corrected_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("corrected_by_kind", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("corrected_by_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("corrected_by_name", sa.String(length=200), nullable=True))
    op.create_index("ix_recognition_events_corrected_at", "recognition_events", ["corrected_at"])


def downgrade() -> None:
    op.drop_index("ix_recognition_events_corrected_at", table_name="recognition_events")
    with op.batch_alter_table("recognition_events") as batch:
        for column in ("corrected_by_name", "corrected_by_id", "corrected_by_kind", "corrected_at", "encoder_hash",
                       "embedding"):
            batch.drop_column(column)

"""A face says whether it was uploaded or captured by a camera (added from an event), and the deployment records
which encoder its gallery was started with (and why)

Revision ID: 0014_capture_and_encoder
Revises: 0013_output_kinds
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_capture_and_encoder"
down_revision = "0013_output_kinds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # faces stored before were uploaded photos (enroll-from-event has not been released without this column)
    with op.batch_alter_table("faces") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=10), nullable=False, server_default="upload"))
    # an existing deployment keeps the encoder its embeddings were made with: its choice is recorded at its next start
    with op.batch_alter_table("deployment_identity") as batch:
        batch.add_column(sa.Column("encoder", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("encoder_reason", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("encoder_decided_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployment_identity") as batch:
        for column in ("encoder_decided_at", "encoder_reason", "encoder"):
            batch.drop_column(column)
    with op.batch_alter_table("faces") as batch:
        batch.drop_column("origin")

"""an output's correction says what the correction was when it was queued: it may be undone before it is sent

Revision ID: 0015_output_snapshots
Revises: 0014_capture_and_encoder
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_output_snapshots"
down_revision = "0014_capture_and_encoder"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # what is queued already keeps no snapshot: it is sent with the event's correction as it is then, as before
    for table in ("webhook_deliveries", "mqtt_messages"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("correction", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("webhook_deliveries", "mqtt_messages"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("correction")

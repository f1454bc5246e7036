"""an event's outputs say what they tell of it: recorded, or corrected / the correction undone, sent again

Revision ID: 0013_output_kinds
Revises: 0012_visitor_groups
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_output_kinds"
down_revision = "0012_visitor_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # what is queued already was queued when its event was recorded
    for table in ("webhook_deliveries", "mqtt_messages"):
        op.add_column(table, sa.Column("kind", sa.String(20), nullable=False, server_default="recorded"))


def downgrade() -> None:
    for table in ("webhook_deliveries", "mqtt_messages"):
        op.drop_column(table, "kind")

"""MQTT: an outbox of events for the broker, one worker's lease to publish them, and the rate each event stated

Revision ID: 0010_mqtt
Revises: 0009_webhook_signature_format
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_mqtt"
down_revision = "0009_webhook_signature_format"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # events recorded before say nothing of their rate (null: not known), rather than a rate they never stated
    op.add_column("recognition_events", sa.Column("stranger_accept_rate", sa.Float(), nullable=True))
    op.create_table(
        "mqtt_messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(32), sa.ForeignKey("recognition_events.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_mqtt_messages_event_id", "mqtt_messages", ["event_id"])
    op.create_table(
        "worker_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("worker_leases")
    op.drop_index("ix_mqtt_messages_event_id", table_name="mqtt_messages")
    op.drop_table("mqtt_messages")
    op.drop_column("recognition_events", "stranger_accept_rate")

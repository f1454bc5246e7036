"""named admin accounts with per-collection rights; events and webhooks belong to a collection

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_accounts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("deployment_admin", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "admin_grants",
        sa.Column("account_id", sa.String(32), sa.ForeignKey("admin_accounts.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("collection", sa.String(64), sa.ForeignKey("collections.name", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("role", sa.String(20), nullable=False),  # admin | viewer
    )
    op.add_column("admin_sessions", sa.Column("account_id", sa.String(32), nullable=True))
    # Every event and webhook so far was the one gallery's: they land in `default` (kept by the service on SQLite,
    # as people.collection is: see 0005).
    op.add_column("recognition_events",
                  sa.Column("collection", sa.String(64), nullable=False, server_default="default"))
    op.create_index("ix_recognition_events_collection", "recognition_events", ["collection"])
    op.add_column("webhooks", sa.Column("collection", sa.String(64), nullable=False, server_default="default"))
    if op.get_bind().dialect.name != "sqlite":
        op.create_foreign_key("fk_events_collection", "recognition_events", "collections", ["collection"], ["name"],
                              ondelete="CASCADE")
        op.create_foreign_key("fk_webhooks_collection", "webhooks", "collections", ["collection"], ["name"],
                              ondelete="CASCADE")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_webhooks_collection", "webhooks", type_="foreignkey")
        op.drop_constraint("fk_events_collection", "recognition_events", type_="foreignkey")
    op.drop_column("webhooks", "collection")
    op.drop_index("ix_recognition_events_collection", "recognition_events")
    op.drop_column("recognition_events", "collection")
    op.drop_column("admin_sessions", "account_id")
    op.drop_table("admin_grants")
    op.drop_table("admin_accounts")

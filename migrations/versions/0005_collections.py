"""collections: several galleries in one deployment; every existing person lands in `default`

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    collections = op.create_table(
        "collections",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.bulk_insert(collections, [{"name": "default", "created_at": datetime.now(timezone.utc)}])
    # Added in place. SQLite cannot add a column with a foreign key and a non-null default, and its batch mode
    # (copy, drop, rename) would cascade the drop of `people` into `faces` with foreign keys on, so there the
    # reference is kept by the service (deleting a collection deletes its people and keys first).
    op.add_column("people", sa.Column("collection", sa.String(64), nullable=False, server_default="default"))
    op.create_index("ix_people_collection", "people", ["collection"])
    op.add_column("api_keys", sa.Column("collection", sa.String(64), nullable=True))  # existing keys: every one
    if op.get_bind().dialect.name != "sqlite":
        op.create_foreign_key("fk_people_collection", "people", "collections", ["collection"], ["name"])
        op.create_foreign_key("fk_api_keys_collection", "api_keys", "collections", ["collection"], ["name"],
                              ondelete="CASCADE")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_api_keys_collection", "api_keys", type_="foreignkey")
        op.drop_constraint("fk_people_collection", "people", type_="foreignkey")
    op.drop_column("api_keys", "collection")
    op.drop_index("ix_people_collection", "people")
    op.drop_column("people", "collection")
    op.drop_table("collections")

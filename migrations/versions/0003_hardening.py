"""deployment identity, photo journal, server-side admin sessions; key prefixes that reveal little

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployment_identity",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("instance_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "photo_journal",
        sa.Column("file_name", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("signed_in_by", sa.String(32), nullable=False),
        sa.Column("password_tag", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_admin_sessions_expires_at", "admin_sessions", ["expires_at"])
    # A key given by FACESHOT_ADMIN_KEY could be short, and its stored 8-character prefix (shown in
    # key listings) most of it. Generated keys ("fs_" + 43 characters) keep theirs.
    keys = sa.table("api_keys", sa.column("prefix", sa.String))
    op.execute(keys.update().where(~keys.c.prefix.like("fs\\_%", escape="\\"))
               .values(prefix=sa.func.substr(keys.c.prefix, 1, 4)))


def downgrade() -> None:
    op.drop_index("ix_admin_sessions_expires_at", "admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_table("photo_journal")
    op.drop_table("deployment_identity")

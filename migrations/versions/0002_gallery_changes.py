"""gallery_changes: the people each gallery version touched

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gallery_changes",
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("person_id", sa.String(32), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("gallery_changes")

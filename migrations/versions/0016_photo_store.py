"""photos may be kept in the database (FACESHOT_PHOTO_STORE=database): replicas on several hosts need no shared disk

Revision ID: 0016_photo_store
Revises: 0015_output_snapshots
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0016_photo_store"
down_revision = "0015_output_snapshots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "photos",
        sa.Column("name", sa.String(length=200), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("photos")

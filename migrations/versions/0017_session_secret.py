"""the admin page's signing secret lives in the database, so replicas with data folders of their own share sessions

Revision ID: 0017_session_secret
Revises: 0016_photo_store
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_session_secret"
down_revision = "0016_photo_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # empty until the first sign-in after the upgrade, which moves <data dir>/admin_session_secret in (if any)
    with op.batch_alter_table("deployment_identity") as batch:
        batch.add_column(sa.Column("session_secret", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployment_identity") as batch:
        batch.drop_column("session_secret")

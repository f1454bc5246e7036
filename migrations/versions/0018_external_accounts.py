"""an admin account may be made by a company's sign-in (a signing-in reverse proxy): who it is, there

Revision ID: 0018_external_accounts
Revises: 0017_session_secret
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0018_external_accounts"
down_revision = "0017_session_secret"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # accounts made before are local ones (a password of their own)
    with op.batch_alter_table("admin_accounts") as batch:
        batch.add_column(sa.Column("external_subject", sa.String(length=300), nullable=True))
        batch.create_unique_constraint("uq_admin_accounts_external_subject", ["external_subject"])


def downgrade() -> None:
    with op.batch_alter_table("admin_accounts") as batch:
        batch.drop_constraint("uq_admin_accounts_external_subject", type_="unique")
        batch.drop_column("external_subject")

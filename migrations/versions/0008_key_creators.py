"""an API key remembers the admin account that made it, so disabling or deleting the account revokes it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # no foreign key: the account's row may go (deleted) while the key's revocation is what remains of it
    op.add_column("api_keys", sa.Column("created_by_account", sa.String(32), nullable=True))
    # the keys accounts made before: the audit log says who made each one
    op.execute("UPDATE api_keys SET created_by_account = (SELECT a.actor_id FROM audit_log a "
               "WHERE a.action = 'key.create' AND a.actor_kind = 'account' AND a.target = api_keys.id)")


def downgrade() -> None:
    op.drop_column("api_keys", "created_by_account")

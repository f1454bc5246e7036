"""a webhook says how its deliveries are signed: Standard Webhooks, or the legacy X-Faceshot-* headers

Revision ID: 0009_webhook_signature_format
Revises: 0008
Create Date: 2026-12-09
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_webhook_signature_format"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the webhooks made before have url-safe secrets, which the spec's verifiers cannot decode: they stay legacy
    # (so does a webhook a worker of the previous release adds during a rolling upgrade: it omits the column)
    op.add_column("webhooks", sa.Column("signature_format", sa.String(10), nullable=False, server_default="legacy"))


def downgrade() -> None:
    op.drop_column("webhooks", "signature_format")

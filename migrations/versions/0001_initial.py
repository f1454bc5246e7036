"""people, faces, api keys and the gallery version

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True, unique=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_people_name", "people", ["name"])
    op.create_table(
        "faces",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("person_id", sa.String(32), sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("encoder_hash", sa.String(64), nullable=False),
        sa.Column("box", sa.JSON(), nullable=False),
        sa.Column("det_score", sa.Float(), nullable=False),
        sa.Column("image_file", sa.String(200), nullable=True),
        sa.Column("image_type", sa.String(50), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_faces_person_id", "faces", ["person_id"])
    op.create_index("ix_faces_encoder_hash", "faces", ["encoder_hash"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("prefix", sa.String(12), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    gallery = op.create_table(
        "gallery_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.bulk_insert(gallery, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("gallery_state")
    op.drop_table("api_keys")
    op.drop_index("ix_faces_encoder_hash", "faces")
    op.drop_index("ix_faces_person_id", "faces")
    op.drop_table("faces")
    op.drop_index("ix_people_name", "people")
    op.drop_table("people")

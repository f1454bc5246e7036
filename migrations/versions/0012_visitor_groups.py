"""Unknown visitors grouped: the groups ("Unknown #N" per collection), which events are in which, the pairs an admin
said are different people, and each collection's version and next number

Revision ID: 0012_visitor_groups
Revises: 0011_event_review
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_visitor_groups"
down_revision = "0011_event_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # events recorded before are not grouped: grouping starts with the next unknown event
    op.create_table(
        "visitor_groups",
        sa.Column("collection", sa.String(64), sa.ForeignKey("collections.name", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("number", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "visitor_members",
        sa.Column("event_id", sa.String(32), sa.ForeignKey("recognition_events.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("collection", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
    )
    op.create_index("ix_visitor_members_collection", "visitor_members", ["collection"])
    op.create_index("ix_visitor_members_number", "visitor_members", ["number"])
    op.create_table(
        "visitor_cannot_links",
        sa.Column("collection", sa.String(64), primary_key=True),
        sa.Column("a", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("b", sa.Integer(), primary_key=True, autoincrement=False),
    )
    op.create_table(
        "visitor_state",
        sa.Column("collection", sa.String(64), sa.ForeignKey("collections.name", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("next_number", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("visitor_state")
    op.drop_table("visitor_cannot_links")
    op.drop_index("ix_visitor_members_number", table_name="visitor_members")
    op.drop_index("ix_visitor_members_collection", table_name="visitor_members")
    op.drop_table("visitor_members")
    op.drop_table("visitor_groups")

"""tag_push: the automatic tags WeCom has per customer (what `mark_tag` confirmed)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tag_push",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("pushed_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["tag_id"], ["tag.id"]),
        sa.PrimaryKeyConstraint("customer_id", "tag_id"),
    )
    op.create_index("ix_tag_push_tag", "tag_push", ["tag_id", "customer_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tag_push_tag", table_name="tag_push")
    op.drop_table("tag_push")

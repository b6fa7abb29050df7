"""wecom_callback: WeCom callback events as received, before processing

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wecom_callback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
        sa.Column("change_type", sqlmodel.sql.sqltypes.AutoString(length=48), nullable=True),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("received_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_key"),
    )
    op.create_index(
        "ix_wecom_callback_pending", "wecom_callback", ["processed_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_wecom_callback_pending", table_name="wecom_callback")
    op.drop_table("wecom_callback")

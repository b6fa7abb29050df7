"""review: stored attributions, when staff confirmed each mass message, deliveries by planned_at

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attribution",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("sop_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("touched_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("placed_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revenue_fen", sa.Integer(), nullable=False),
        sa.Column("window_hours", sa.Integer(), nullable=False),
        sa.Column("attributed_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"]),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_index("ix_attribution_placed", "attribution", ["placed_at"])
    op.create_index("ix_attribution_delivery", "attribution", ["delivery_id"])
    op.create_index("ix_delivery_planned", "delivery", ["planned_at"])
    with op.batch_alter_table("mass_task", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("confirmed_at", models.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("mass_task", schema=None) as batch_op:
        batch_op.drop_column("confirmed_at")
    op.drop_index("ix_delivery_planned", table_name="delivery")
    op.drop_index("ix_attribution_delivery", table_name="attribution")
    op.drop_index("ix_attribution_placed", table_name="attribution")
    op.drop_table("attribution")

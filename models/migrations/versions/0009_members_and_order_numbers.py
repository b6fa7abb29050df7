"""the chain's members (member table), order numbers and unionids for `sopflow import`

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_no", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("mobile", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("unionid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("gender", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("joined_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("linked_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_no"),
    )
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_member_mobile"), ["mobile"], unique=False)
        batch_op.create_index(batch_op.f("ix_member_unionid"), ["unionid"], unique=False)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("order_no", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("member_id", sa.Integer(), nullable=True))
        batch_op.alter_column("customer_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_unique_constraint("uq_orders_order_no", ["order_no"])
        batch_op.create_index(batch_op.f("ix_orders_member_id"), ["member_id"], unique=False)
        batch_op.create_foreign_key("fk_orders_member_id", "member", ["member_id"], ["id"])
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unionid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_customer_unionid"), ["unionid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_unionid"))
        batch_op.drop_column("unionid")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint("fk_orders_member_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_orders_member_id"))
        batch_op.drop_constraint("uq_orders_order_no", type_="unique")
        batch_op.alter_column("customer_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("member_id")
        batch_op.drop_column("order_no")
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_unionid"))
        batch_op.drop_index(batch_op.f("ix_member_mobile"))
        batch_op.drop_index(batch_op.f("ix_member_customer_id"))
    op.drop_table("member")

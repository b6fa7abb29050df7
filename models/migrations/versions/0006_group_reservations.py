"""cap reservations for groups: a reservation is a customer's or a group's

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cap_reservation", schema=None) as batch_op:
        batch_op.alter_column("customer_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(
            sa.Column(
                "group_id",
                sa.Integer(),
                sa.ForeignKey("customer_group.id", name="fk_cap_reservation_group"),
                nullable=True,
            )
        )
        batch_op.create_unique_constraint(
            "uq_cap_reservation_group", ["day", "group_id", "sop_id", "step"]
        )
        batch_op.create_check_constraint(
            "ck_cap_reservation_target", "(customer_id IS NULL) <> (group_id IS NULL)"
        )


def downgrade() -> None:
    # Group reservations only matter on their day; the old table has no place for them.
    op.execute("DELETE FROM cap_reservation WHERE group_id IS NOT NULL")
    with op.batch_alter_table("cap_reservation", schema=None) as batch_op:
        batch_op.drop_constraint("ck_cap_reservation_target", type_="check")
        batch_op.drop_constraint("uq_cap_reservation_group", type_="unique")
        batch_op.drop_constraint("fk_cap_reservation_group", type_="foreignkey")
        batch_op.drop_column("group_id")
        batch_op.alter_column("customer_id", existing_type=sa.Integer(), nullable=False)

"""wecom directory sync: follow relations, WeCom tag and group ids, members who left, checkpoints

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

String = sqlmodel.sql.sqltypes.AutoString
UTC = models.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "follow_relation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("added_at", UTC(timezone=True), nullable=False),
        sa.Column("remark", String(length=128), nullable=False),
        sa.Column("add_way", sa.Integer(), nullable=True),
        sa.Column("state", String(length=30), nullable=True),
        sa.Column("tag_ids", sa.Text(), nullable=False),
        sa.Column("deleted_at", UTC(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id", "staff_id", name="uq_follow_relation"),
    )
    op.create_index("ix_follow_relation_staff", "follow_relation", ["staff_id"], unique=False)
    op.create_table(
        "wecom_tag",
        sa.Column("wecom_id", String(length=64), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("group_id", String(length=64), nullable=False),
        sa.Column("group_name", String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["tag_id"], ["tag.id"]),
        sa.PrimaryKeyConstraint("wecom_id"),
        sa.UniqueConstraint("tag_id"),
    )
    op.create_table(
        "wecom_group",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("member_version", String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["customer_group.id"]),
        sa.PrimaryKeyConstraint("group_id"),
    )
    op.create_table(
        "group_member_left",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", UTC(timezone=True), nullable=False),
        sa.Column("left_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["group_id"], ["customer_group.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_group_member_left_customer", "group_member_left", ["customer_id"], unique=False
    )
    op.create_index(
        op.f("ix_group_member_left_group_id"), "group_member_left", ["group_id"], unique=False
    )
    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTC(timezone=True), nullable=False),
        sa.Column("finished_at", UTC(timezone=True), nullable=True),
        sa.Column("phase", String(length=16), nullable=False),
        sa.Column("staff_userids", sa.Text(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("cursor", String(length=256), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("writes", sa.Integer(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_sync_run_finished_at"), "sync_run", ["finished_at"], unique=False)
    op.create_table(
        "sync_seen",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["sync_run.id"]),
        sa.PrimaryKeyConstraint("run_id", "staff_id", "customer_id"),
    )


def downgrade() -> None:
    op.drop_table("sync_seen")
    op.drop_index(op.f("ix_sync_run_finished_at"), table_name="sync_run")
    op.drop_table("sync_run")
    op.drop_index(op.f("ix_group_member_left_group_id"), table_name="group_member_left")
    op.drop_index("ix_group_member_left_customer", table_name="group_member_left")
    op.drop_table("group_member_left")
    op.drop_table("wecom_group")
    op.drop_table("wecom_tag")
    op.drop_index("ix_follow_relation_staff", table_name="follow_relation")
    op.drop_table("follow_relation")

"""occurrence_work, occurrence_partition: one occurrence's batches and sender buckets claimed by many runners

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "occurrence_work",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sop_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("occurrence", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("flow_run_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("phase", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("plan", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_occurrence_work_key", "occurrence_work", ["sop_id", "step", "occurrence"], unique=False
    )
    op.create_table(
        "occurrence_partition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("work_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("lease_until", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("updated_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["work_id"], ["occurrence_work.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_occurrence_partition_seq",
        "occurrence_partition",
        ["work_id", "kind", "seq"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_occurrence_partition_seq", table_name="occurrence_partition")
    op.drop_table("occurrence_partition")
    op.drop_index("ix_occurrence_work_key", table_name="occurrence_work")
    op.drop_table("occurrence_work")

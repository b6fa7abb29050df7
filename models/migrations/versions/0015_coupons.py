"""coupons: one row per touch whose step issues a coupon through the chain's system (issuing → issued | failed)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _text(length: int) -> sa.types.TypeEngine:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "coupon",
        sa.Column("idempotency_key", _text(255), nullable=False),
        sa.Column("sop_id", _text(64), nullable=False),
        sa.Column("step", _text(64), nullable=False),
        sa.Column("coupon", _text(64), nullable=False),
        sa.Column("external_userid", _text(64), nullable=False),
        sa.Column("state", _text(16), nullable=False),
        sa.Column("coupon_id", _text(64), nullable=True),
        sa.Column("code", _text(64), nullable=True),
        sa.Column("expires_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", _text(200), nullable=True),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key"),
    )


def downgrade() -> None:
    op.drop_table("coupon")

"""product_picture: a product has a photo (a URL or a file under the SOP folder) for `deal.picture`

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("product") as batch:
        batch.add_column(sa.Column("picture", sa.String(length=512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("product") as batch:
        batch.drop_column("picture")

"""A short refresh claim on the token row, instead of a write lock held across the network.

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("refresh_claimed_until", sa.Float))
        batch.add_column(sa.Column("refresh_claimant", sa.String(128)))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("refresh_claimant")
        batch.drop_column("refresh_claimed_until")

"""The API key that handed out a connect link: the link ends when the key is revoked.

Revision ID: 0013
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_pending_signins") as batch:
        batch.add_column(sa.Column("api_key_id", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("service_pending_signins") as batch:
        batch.drop_column("api_key_id")

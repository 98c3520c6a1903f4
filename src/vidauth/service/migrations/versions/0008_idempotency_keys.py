"""The service's Idempotency-Key records for POST /v1/uploads.

Revision ID: 0008
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_idempotency_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("upload_id", sa.String(40), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response_body", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False, index=True),
        sa.Column("claimed_at", sa.Float, nullable=False),
        sa.UniqueConstraint("tenant", "key", name="uq_service_idempotency_keys_key"),
    )


def downgrade() -> None:
    op.drop_table("service_idempotency_keys")

"""Service hardening: key use and webhook secrets, browser-bound connect links, file identity.

Revision ID: 0005
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_api_keys") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("webhook_secret", sa.LargeBinary))
    with op.batch_alter_table("service_pending_signins") as batch:
        batch.add_column(sa.Column("start_hash", sa.String(64)))
        batch.add_column(sa.Column("authorize_url", sa.LargeBinary))
        batch.add_column(sa.Column("browser_hash", sa.String(64)))
        batch.add_column(sa.Column("started_at", sa.Float))
        batch.add_column(sa.Column("expected_username", sa.String(255)))
        batch.create_index("ix_service_pending_signins_start_hash", ["start_hash"], unique=True)
    with op.batch_alter_table("service_jobs") as batch:
        batch.add_column(sa.Column("api_key_id", sa.Integer))
        batch.add_column(sa.Column("file_identity", sa.String(128)))
    with op.batch_alter_table("service_webhooks") as batch:
        batch.add_column(sa.Column("api_key_id", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("service_webhooks") as batch:
        batch.drop_column("api_key_id")
    with op.batch_alter_table("service_jobs") as batch:
        batch.drop_column("file_identity")
        batch.drop_column("api_key_id")
    with op.batch_alter_table("service_pending_signins") as batch:
        batch.drop_index("ix_service_pending_signins_start_hash")
        for column in ("expected_username", "started_at", "browser_hash", "authorize_url"):
            batch.drop_column(column)
        batch.drop_column("start_hash")
    with op.batch_alter_table("service_api_keys") as batch:
        batch.drop_column("webhook_secret")
        batch.drop_column("last_used_at")

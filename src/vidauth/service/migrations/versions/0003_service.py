"""The HTTP service: API keys, connections, pending sign-ins, upload jobs and webhooks.

Revision ID: 0003
Revises: (none: the first of the service)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("tenant", sa.String(255), nullable=False, index=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "service_connections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("external_user_id", sa.String(255), nullable=False),
        sa.Column(
            "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL"), index=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant", "external_user_id", name="uq_service_connections_user"),
    )
    op.create_table(
        "service_pending_signins",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("external_user_id", sa.String(255), nullable=False),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("code_verifier", sa.LargeBinary),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False, index=True),
        sa.Column("used_at", sa.Float),
    )
    op.create_table(
        "service_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(255), nullable=False, index=True),
        sa.Column("external_user_id", sa.String(255), nullable=False, index=True),
        sa.Column("file_path", sa.Text, nullable=False),
        sa.Column("owns_file", sa.Boolean, nullable=False),
        sa.Column("folder", sa.String(1024), nullable=False),
        sa.Column("folder_id", sa.String(64)),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("callback_url", sa.Text),
        sa.Column("state", sa.String(32), nullable=False, index=True),
        sa.Column("bytes_total", sa.BigInteger, nullable=False),
        sa.Column("bytes_sent", sa.BigInteger, nullable=False),
        sa.Column("record_id", sa.Integer),
        sa.Column("session_upload_id", sa.String(64)),
        sa.Column("session_id", sa.String(64)),
        sa.Column("viewer_url", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("lease_owner", sa.String(255)),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "service_webhooks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.String(40), index=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False, index=True),
        sa.Column("delivered_at", sa.Float),
        sa.Column("failed", sa.Boolean, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_webhooks")
    op.drop_table("service_jobs")
    op.drop_table("service_pending_signins")
    op.drop_table("service_connections")
    op.drop_table("service_api_keys")

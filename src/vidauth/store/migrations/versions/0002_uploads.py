"""Resumable uploads: one row per file upload, one per acknowledged part.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL"), index=True
        ),
        sa.Column("server", sa.String(512)),
        sa.Column("folder_id", sa.String(64), nullable=False),
        sa.Column("session_upload_id", sa.String(64), index=True),
        sa.Column("upload_target", sa.String(1024)),
        sa.Column("s3_upload_id", sa.String(1024)),
        sa.Column("object_key", sa.String(1024), nullable=False),
        sa.Column("file_path", sa.Text, nullable=False),
        sa.Column("file_size", sa.BigInteger, nullable=False),
        sa.Column("file_mtime", sa.Float, nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("part_size", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("state", sa.String(32), nullable=False, index=True),
        sa.Column("session_id", sa.String(64)),
        sa.Column("viewer_url", sa.Text),
        sa.Column("message", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "upload_parts",
        sa.Column(
            "upload_id",
            sa.Integer,
            sa.ForeignKey("uploads.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("part_number", sa.Integer, primary_key=True),
        sa.Column("etag", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("upload_parts")
    op.drop_table("uploads")

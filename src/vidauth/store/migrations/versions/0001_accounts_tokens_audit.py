"""Accounts, encrypted tokens and the audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("profile_key", sa.String(512), nullable=False, index=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("username", sa.String(255)),
        sa.Column("server", sa.String(512)),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("grant_type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("profile_key", "subject", name="uq_accounts_profile_subject"),
    )
    op.create_table(
        "tokens",
        sa.Column(
            "account_id",
            sa.Integer,
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("access_token", sa.LargeBinary, nullable=False),
        sa.Column("refresh_token", sa.LargeBinary),
        sa.Column("id_token", sa.LargeBinary),
        sa.Column("token_type", sa.String(32), nullable=False),
        sa.Column("scope", sa.Text),
        sa.Column("expires_at", sa.Float),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="SET NULL"), index=True
        ),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("tokens")
    op.drop_table("accounts")

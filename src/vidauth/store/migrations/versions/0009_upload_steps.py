"""The step an upload has reached, and what each upload host answered to optional S3 calls.

Revision ID: 0009
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("step", sa.String(32), nullable=True))
    # Uploads recorded before: a multipart upload opened means parts were going.
    op.execute("UPDATE uploads SET step = 'parts' WHERE s3_upload_id IS NOT NULL")
    op.execute("UPDATE uploads SET step = 'created' WHERE s3_upload_id IS NULL")
    op.create_table(
        "upload_host_calls",
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("call", sa.String(32), primary_key=True),
        sa.Column("answer", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(255)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("upload_host_calls")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("step")

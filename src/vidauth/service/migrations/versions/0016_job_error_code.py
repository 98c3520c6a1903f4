"""A job's error code in a column of its own, apart from its one line.

Jobs stored their error as ``"<code>: <detail>"`` in ``error``; rows written that way are split,
for codes vidauth knows (a line that only looks coded stays whole, as the old reader left it).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

from vidauth.errors import ErrorCode

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_CODED = re.compile(r"^([a-z_]+): (.*)$", re.DOTALL)
_CODES = frozenset(code.value for code in ErrorCode)

_jobs = sa.table(
    "service_jobs",
    sa.column("id", sa.String),
    sa.column("error", sa.Text),
    sa.column("error_code", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("service_jobs") as batch:
        batch.add_column(sa.Column("error_code", sa.String(64), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(_jobs.c.id, _jobs.c.error).where(_jobs.c.error.is_not(None)))
    for job_id, error in rows.all():
        match = _CODED.match(error)
        if match and match.group(1) in _CODES:
            conn.execute(
                _jobs.update()
                .where(_jobs.c.id == job_id)
                .values(error_code=match.group(1), error=match.group(2))
            )


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_jobs.c.id, _jobs.c.error_code, _jobs.c.error).where(
            _jobs.c.error_code.is_not(None)
        )
    )
    for job_id, code, error in rows.all():
        conn.execute(
            _jobs.update().where(_jobs.c.id == job_id).values(error=f"{code}: {error or ''}")
        )
    with op.batch_alter_table("service_jobs") as batch:
        batch.drop_column("error_code")

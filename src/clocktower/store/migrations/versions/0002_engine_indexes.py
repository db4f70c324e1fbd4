"""indexes for the claim order and for the jobs that wait for others (`after`)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HAS_AFTER = "\"after\" != ''"


def upgrade() -> None:
    op.create_index("ix_runs_claim", "runs", ["state", sa.text("priority DESC"), "due_at", "id"])
    op.create_index(
        "ix_jobs_after",
        "jobs",
        ["after"],
        sqlite_where=sa.text(HAS_AFTER),
        postgresql_where=sa.text(HAS_AFTER),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_after", table_name="jobs")
    op.drop_index("ix_runs_claim", table_name="runs")

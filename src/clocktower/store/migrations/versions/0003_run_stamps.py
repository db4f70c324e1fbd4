"""a change stamp per job's runs, kept by triggers on SQLite

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Every column of `runs` but `lease_until`: renewing a lease changes nothing a
# reader sees. A later migration that adds a column to `runs` recreates the
# update trigger with it.
SHOWN = (
    "job_id, scheduled_for, due_at, fire_key, trigger, attempt, retry_of, state, queued, "
    "cancel_requested, priority, node, created_at, started_at, finished_at, exit_code, "
    "http_status, error, progress_done, progress_total, payload, env, result, missed_count, "
    "missed_until, output_bytes, output_dropped"
)
BUMP = (
    "INSERT INTO run_stamps (job_id, stamp) VALUES ({row}.job_id, 1) "
    "ON CONFLICT (job_id) DO UPDATE SET stamp = stamp + 1;"
)
TRIGGERS = {
    "runs_stamp_insert": f"AFTER INSERT ON runs BEGIN {BUMP.format(row='NEW')} END",
    "runs_stamp_update": f"AFTER UPDATE OF {SHOWN} ON runs BEGIN {BUMP.format(row='NEW')} END",
    "runs_stamp_delete": f"AFTER DELETE ON runs BEGIN {BUMP.format(row='OLD')} END",
}


def upgrade() -> None:
    op.create_table(
        "run_stamps",
        sa.Column("job_id", sa.String(length=128), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_run_stamps")),
        sqlite_with_rowid=False,
    )
    if op.get_bind().dialect.name == "sqlite":
        for name, body in TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("run_stamps")

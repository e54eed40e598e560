"""PostgreSQL: vacuum the insert-only event tables early, so the summary's index-only scans
find an up-to-date visibility map soon after a load (no-op on SQLite).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLES = ("spans", "metrics")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _TABLES:
        op.execute(
            f"ALTER TABLE {table} SET (autovacuum_vacuum_insert_threshold = 20000, "
            "autovacuum_vacuum_insert_scale_factor = 0.02, "
            "autovacuum_analyze_scale_factor = 0.05)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _TABLES:
        op.execute(
            f"ALTER TABLE {table} RESET (autovacuum_vacuum_insert_threshold, "
            "autovacuum_vacuum_insert_scale_factor, autovacuum_analyze_scale_factor)"
        )

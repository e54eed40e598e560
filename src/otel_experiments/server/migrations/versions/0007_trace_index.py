"""Spans: an index to read one trace of an experiment (the web UI's trace page).

Without it, finding the spans of a trace scans every span of the experiment (over 200 ms
at 100,000 spans on SQLite); with it, a few index entries.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_spans_experiment_trace", "spans", ["experiment_id", "trace_id"])


def downgrade() -> None:
    op.drop_index("ix_spans_experiment_trace", "spans")

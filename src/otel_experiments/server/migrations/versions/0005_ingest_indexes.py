"""Spans: indexes for the queries the API runs, no more (each one is paid on every insert).

* ``ix_spans_experiment_duration`` (experiment_id, duration, is_root, status) covers the
  summary's span statistics and percentiles, for all spans and for root spans (the root
  ones filter ``is_root`` inside the same index), replacing ``ix_spans_summary`` and
  ``ix_spans_root_summary``;
* ``ix_spans_experiment_seq`` (experiment_id, seq) pages through an experiment's events in
  order (before, an unfiltered page sorted the whole experiment);
* ``ix_spans_experiment_errors``, partial on ``status = 'error'``, pages through the errors
  (rare, so they cost little to index); ``filter[status]=ok`` and the ``user_id`` /
  ``organization_id`` filters walk ``ix_spans_experiment_seq`` and test the rows, instead
  of three indexes taking a write per span: ``ix_spans_experiment_status``,
  ``ix_spans_experiment_user`` and ``ix_spans_experiment_org`` are dropped.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ERRORS = sa.text("status = 'error'")


def upgrade() -> None:
    op.create_index("ix_spans_experiment_duration", "spans",
                    ["experiment_id", "duration", "is_root", "status"])
    op.create_index("ix_spans_experiment_seq", "spans", ["experiment_id", "seq"])
    op.create_index("ix_spans_experiment_errors", "spans", ["experiment_id", "seq"],
                    sqlite_where=_ERRORS, postgresql_where=_ERRORS)
    for name in ("ix_spans_summary", "ix_spans_root_summary", "ix_spans_experiment_status",
                 "ix_spans_experiment_user", "ix_spans_experiment_org"):
        op.drop_index(name, "spans")


def downgrade() -> None:
    op.create_index("ix_spans_experiment_org", "spans", ["experiment_id", "organization_id", "seq"])
    op.create_index("ix_spans_experiment_user", "spans", ["experiment_id", "user_id", "seq"])
    op.create_index("ix_spans_experiment_status", "spans", ["experiment_id", "status", "seq"])
    op.create_index("ix_spans_root_summary", "spans",
                    ["experiment_id", "is_root", "duration", "status"])
    op.create_index("ix_spans_summary", "spans", ["experiment_id", "duration", "status"])
    op.drop_index("ix_spans_experiment_errors", "spans")
    op.drop_index("ix_spans_experiment_seq", "spans")
    op.drop_index("ix_spans_experiment_duration", "spans")

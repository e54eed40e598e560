"""Covering indexes for the summary: span stats and metric stats read no table rows.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_spans_summary", "spans", ["experiment_id", "duration", "status"])
    op.create_index("ix_spans_root_summary", "spans",
                    ["experiment_id", "is_root", "duration", "status"])
    op.drop_index("ix_spans_experiment_duration", "spans")
    op.drop_index("ix_spans_experiment_root_duration", "spans")
    op.create_index(
        "ix_metrics_summary", "metrics",
        ["experiment_id", "label", "metric_type", "score_value", "boolean_value",
         "categorical_value"],
    )
    op.drop_index("ix_metrics_experiment_label_score", "metrics")


def downgrade() -> None:
    op.create_index("ix_metrics_experiment_label_score", "metrics",
                    ["experiment_id", "label", "metric_type", "score_value"])
    op.drop_index("ix_metrics_summary", "metrics")
    op.create_index("ix_spans_experiment_root_duration", "spans",
                    ["experiment_id", "is_root", "duration"])
    op.create_index("ix_spans_experiment_duration", "spans", ["experiment_id", "duration"])
    op.drop_index("ix_spans_root_summary", "spans")
    op.drop_index("ix_spans_summary", "spans")

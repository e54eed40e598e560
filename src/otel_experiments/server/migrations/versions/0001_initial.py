"""Initial schema: projects, datasets and records, experiments, spans, metrics.

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

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _seq() -> sa.Column[int]:
    return sa.Column("seq", Seq, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "projects",
        _seq(),
        sa.Column("id", sa.String(256), nullable=False, unique=True),
        sa.Column("name", sa.String(512), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "datasets",
        _seq(),
        sa.Column("id", sa.String(256), nullable=False, unique=True),
        sa.Column("project_id", sa.String(256), nullable=True),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_datasets_project_id", "datasets", ["project_id"])
    op.create_table(
        "dataset_records",
        _seq(),
        sa.Column("dataset_id", sa.String(256), nullable=False),
        sa.Column("record_id", sa.String(256), nullable=False),
        sa.Column("version_added", sa.Integer, nullable=False),
        sa.Column("version_removed", sa.Integer, nullable=True),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("expected_output", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("dataset_id", "record_id", "version_added", name="uq_record_version"),
    )
    op.create_index("ix_records_dataset_seq", "dataset_records", ["dataset_id", "seq"])
    op.create_table(
        "experiments",
        _seq(),
        sa.Column("id", sa.String(256), nullable=False, unique=True),
        sa.Column("project_id", sa.String(256), nullable=True),
        sa.Column("dataset_id", sa.String(256), nullable=True),
        sa.Column("dataset_version", sa.Integer, nullable=True),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("feature_slug", sa.String(256), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_experiments_project_id", "experiments", ["project_id"])
    op.create_index("ix_experiments_feature_slug", "experiments", ["feature_slug"])
    op.create_index("ix_experiments_status", "experiments", ["status"])
    op.create_table(
        "spans",
        _seq(),
        sa.Column("experiment_id", sa.String(256), nullable=False),
        sa.Column("span_id", sa.String(256), nullable=False),
        sa.Column("trace_id", sa.String(256), nullable=False),
        sa.Column("parent_id", sa.String(256), nullable=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("duration", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("is_root", sa.Boolean, nullable=False),
        sa.Column("dataset_record_id", sa.String(256), nullable=True),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("received_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("experiment_id", "span_id", name="uq_spans_experiment_span"),
    )
    op.create_index("ix_spans_experiment_duration", "spans", ["experiment_id", "duration"])
    op.create_index(
        "ix_spans_experiment_root_duration", "spans", ["experiment_id", "is_root", "duration"]
    )
    op.create_index("ix_spans_experiment_status", "spans", ["experiment_id", "status", "seq"])
    op.create_table(
        "metrics",
        _seq(),
        sa.Column("experiment_id", sa.String(256), nullable=False),
        sa.Column("span_id", sa.String(256), nullable=False),
        sa.Column("trace_id", sa.String(256), nullable=False),
        sa.Column("metric_type", sa.String(16), nullable=False),
        sa.Column("label", sa.String(512), nullable=False),
        sa.Column("score_value", sa.Float, nullable=True),
        sa.Column("categorical_value", sa.Text, nullable=True),
        sa.Column("boolean_value", sa.Boolean, nullable=True),
        sa.Column("timestamp_ms", sa.BigInteger, nullable=True),
        sa.Column("doc", sa.Text, nullable=False),
        sa.UniqueConstraint(
            "experiment_id", "span_id", "metric_type", "label",
            name="uq_metrics_experiment_span_label",
        ),
    )
    op.create_index(
        "ix_metrics_experiment_label_score",
        "metrics",
        ["experiment_id", "label", "metric_type", "score_value"],
    )


def downgrade() -> None:
    for table in ("metrics", "spans", "experiments", "dataset_records", "datasets", "projects"):
        op.drop_table(table)

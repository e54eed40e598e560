"""Metrics: ``doc`` may be NULL, for a metric its columns hold exactly (rebuilt on read).

Most metrics are just ids, type, label, value and timestamp: storing their JSON again took
a third of the bytes each ingest writes. Rows stored before keep their ``doc``.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metrics") as batch:  # SQLite: rebuilds the table
        batch.alter_column("doc", existing_type=sa.Text, nullable=True)


def downgrade() -> None:
    metrics = sa.table("metrics", *(sa.column(c) for c in (
        "seq", "doc", "span_id", "trace_id", "metric_type", "label", "score_value",
        "categorical_value", "boolean_value", "timestamp_ms")))
    conn = op.get_bind()
    rows = conn.execute(sa.select(metrics).where(metrics.c.doc.is_(None))).all()
    for row in rows:  # give every metric its doc back before NOT NULL returns
        m = row._mapping
        key = f"{m['metric_type']}_value"
        value = bool(m[key]) if key == "boolean_value" else m[key]
        doc = {"span_id": m["span_id"], "trace_id": m["trace_id"],
               "metric_type": m["metric_type"], "label": m["label"], key: value,
               "timestamp_ms": m["timestamp_ms"]}
        conn.execute(metrics.update().where(metrics.c.seq == m["seq"])
                     .values(doc=json.dumps(doc, separators=(",", ":"))))
    with op.batch_alter_table("metrics") as batch:
        batch.alter_column("doc", existing_type=sa.Text, nullable=False)

"""The summary's aggregates, kept at ingest; the indexes only the old summary read, dropped.

``span_totals``, ``metric_totals``, ``metric_values`` and ``value_buckets`` (see
``server/store/aggregates.py``) are filled here from the stored spans and metrics, then
added to by every ingest for the rows it newly stores. The summary reads them instead of
walking ``ix_spans_experiment_duration`` and ``ix_metrics_summary`` (which cost an insert
into a random-order index per span and per metric), so those two go: no query the API runs
needs them any more.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# The bucket mapping is part of the stored format: a change to it needs a revision that
# rebuilds ``value_buckets``.
from otel_experiments.server.sketch import bucket

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BATCH = 20_000
_ID, _LABEL, _VALUE = sa.String(256), sa.String(512), sa.Text


def _create_tables() -> None:
    op.create_table(
        "span_totals",
        sa.Column("experiment_id", _ID, primary_key=True),
        sa.Column("scope", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("span_count", sa.BigInteger, nullable=False),
        sa.Column("error_count", sa.BigInteger, nullable=False),
        sa.Column("duration_sum", sa.Float, nullable=False),
        sa.Column("duration_min", sa.BigInteger, nullable=False),
        sa.Column("duration_max", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "metric_totals",
        sa.Column("experiment_id", _ID, primary_key=True),
        sa.Column("label", _LABEL, primary_key=True),
        sa.Column("metric_type", sa.String(16), primary_key=True),
        sa.Column("metric_count", sa.BigInteger, nullable=False),
        sa.Column("score_count", sa.BigInteger, nullable=False),
        sa.Column("score_sum", sa.Float, nullable=False),
        sa.Column("score_min", sa.Float, nullable=True),
        sa.Column("score_max", sa.Float, nullable=True),
    )
    op.create_table(
        "metric_values",
        sa.Column("experiment_id", _ID, primary_key=True),
        sa.Column("label", _LABEL, primary_key=True),
        sa.Column("metric_type", sa.String(16), primary_key=True),
        sa.Column("value", _VALUE, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "value_buckets",
        sa.Column("experiment_id", _ID, primary_key=True),
        sa.Column("series", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("label", _LABEL, primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("n", sa.BigInteger, nullable=False),
    )


_BACKFILL_SQL = [
    "INSERT INTO span_totals SELECT experiment_id, 0, count(*), "
    "sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END), sum(duration), min(duration), "
    "max(duration) FROM spans GROUP BY experiment_id",
    "INSERT INTO span_totals SELECT experiment_id, 1, count(*), "
    "sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END), sum(duration), min(duration), "
    "max(duration) FROM spans WHERE is_root GROUP BY experiment_id",
    "INSERT INTO metric_totals SELECT experiment_id, label, metric_type, count(*), "
    "count(score_value), coalesce(sum(score_value), 0), min(score_value), max(score_value) "
    "FROM metrics GROUP BY experiment_id, label, metric_type",
    "INSERT INTO metric_values SELECT experiment_id, label, metric_type, "
    "CASE WHEN boolean_value THEN 'true' ELSE 'false' END, count(*) FROM metrics "
    "WHERE metric_type = 'boolean' GROUP BY experiment_id, label, metric_type, "
    "CASE WHEN boolean_value THEN 'true' ELSE 'false' END",
    "INSERT INTO metric_values SELECT experiment_id, label, metric_type, categorical_value, "
    "count(*) FROM metrics WHERE metric_type = 'categorical' "
    "GROUP BY experiment_id, label, metric_type, categorical_value",
]


def _backfill_buckets(conn: sa.Connection) -> None:
    """Log-bucket counts of every stored duration and score (in Python: the bucket is a
    logarithm, which SQLite may lack), read in ``seq`` order a batch at a time."""
    counts: dict[tuple[str, int, str, int], int] = {}
    for sql in ("SELECT seq, experiment_id, duration, is_root FROM spans WHERE seq > :last "
                "ORDER BY seq LIMIT :n",
                "SELECT seq, experiment_id, score_value, label FROM metrics "
                "WHERE seq > :last AND metric_type = 'score' ORDER BY seq LIMIT :n"):
        is_spans = "FROM spans" in sql
        last = 0
        while True:
            rows = conn.execute(sa.text(sql), {"last": last, "n": _BATCH}).all()
            if not rows:
                break
            last = rows[-1][0]
            for _, experiment_id, value, extra in rows:
                key = bucket(value)
                series = ((0, 1) if extra else (0,)) if is_spans else (2,)
                label = "" if is_spans else extra
                for s in series:
                    k = (experiment_id, s, label, key)
                    counts[k] = counts.get(k, 0) + 1
    if counts:
        table = sa.table("value_buckets", sa.column("experiment_id"), sa.column("series"),
                         sa.column("label"), sa.column("bucket"), sa.column("n"))
        items = [{"experiment_id": e, "series": s, "label": lb, "bucket": b, "n": n}
                 for (e, s, lb, b), n in counts.items()]
        for i in range(0, len(items), _BATCH):
            conn.execute(table.insert(), items[i:i + _BATCH])


def upgrade() -> None:
    _create_tables()
    conn = op.get_bind()
    for sql in _BACKFILL_SQL:
        conn.execute(sa.text(sql))
    _backfill_buckets(conn)
    op.drop_index("ix_spans_experiment_duration", "spans")
    op.drop_index("ix_metrics_summary", "metrics")


def downgrade() -> None:
    op.create_index("ix_metrics_summary", "metrics", ["experiment_id", "label", "metric_type",
                                                      "score_value", "boolean_value",
                                                      "categorical_value"])
    op.create_index("ix_spans_experiment_duration", "spans",
                    ["experiment_id", "duration", "is_root", "status"])
    for table in ("value_buckets", "metric_values", "metric_totals", "span_totals"):
        op.drop_table(table)

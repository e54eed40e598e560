"""The current database schema as SQLAlchemy Core tables (migrations own the DDL)."""

from __future__ import annotations

import sqlalchemy as sa

from ..events.metrics import MAX_LABEL_BYTES
from ..models import MAX_ID_LENGTH, MAX_NAME_LENGTH

#: Metric labels are limited in UTF-8 bytes and categorical values stored cut to this many
#: characters, so that every index key stays below PostgreSQL's B-tree row limit (2704 bytes).
LABEL_MAX_BYTES = MAX_LABEL_BYTES  # the client checks the same limit when recording
CATEGORY_INDEX_CHARS = 200

metadata = sa.MetaData()

#: Auto-incrementing surrogate key (INTEGER PRIMARY KEY on SQLite, BIGINT identity elsewhere).
Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _seq() -> sa.Column[int]:
    return sa.Column("seq", Seq, primary_key=True, autoincrement=True)


projects = sa.Table(
    "projects",
    metadata,
    _seq(),
    sa.Column("id", sa.String(MAX_ID_LENGTH), nullable=False, unique=True),
    sa.Column("name", sa.String(MAX_NAME_LENGTH), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

datasets = sa.Table(
    "datasets",
    metadata,
    _seq(),
    sa.Column("id", sa.String(MAX_ID_LENGTH), nullable=False, unique=True),
    sa.Column("project_id", sa.String(MAX_ID_LENGTH), nullable=True, index=True),
    sa.Column("name", sa.String(MAX_NAME_LENGTH), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

dataset_records = sa.Table(
    "dataset_records",
    metadata,
    _seq(),
    sa.Column("dataset_id", sa.String(MAX_ID_LENGTH), nullable=False),
    sa.Column("record_id", sa.String(MAX_ID_LENGTH), nullable=False),
    sa.Column("version_added", sa.Integer, nullable=False),
    sa.Column("version_removed", sa.Integer, nullable=True),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("expected_output", sa.Text, nullable=False),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.UniqueConstraint("dataset_id", "record_id", "version_added", name="uq_record_version"),
    sa.Index("ix_records_dataset_seq", "dataset_id", "seq"),
)

experiments = sa.Table(
    "experiments",
    metadata,
    _seq(),
    sa.Column("id", sa.String(MAX_ID_LENGTH), nullable=False, unique=True),
    sa.Column("project_id", sa.String(MAX_ID_LENGTH), nullable=True, index=True),
    sa.Column("dataset_id", sa.String(MAX_ID_LENGTH), nullable=True),
    sa.Column("dataset_version", sa.Integer, nullable=True),
    sa.Column("name", sa.String(MAX_NAME_LENGTH), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("feature_slug", sa.String(MAX_ID_LENGTH), nullable=True, index=True),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("metadata", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

spans = sa.Table(
    "spans",
    metadata,
    _seq(),
    sa.Column("experiment_id", sa.String(MAX_ID_LENGTH), nullable=False),
    sa.Column("span_id", sa.String(MAX_ID_LENGTH), nullable=False),
    sa.Column("trace_id", sa.String(MAX_ID_LENGTH), nullable=False),
    sa.Column("parent_id", sa.String(MAX_ID_LENGTH), nullable=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("start_ns", sa.BigInteger, nullable=False),
    sa.Column("duration", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("is_root", sa.Boolean, nullable=False),
    sa.Column("dataset_record_id", sa.String(MAX_ID_LENGTH), nullable=True),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    # revision 0002
    sa.Column("user_id", sa.String(MAX_ID_LENGTH), nullable=True),
    sa.Column("organization_id", sa.String(MAX_ID_LENGTH), nullable=True),
    # revision 0008: GenAI usage (``server.usage``); NULL on spans that carry none
    sa.Column("input_tokens", sa.BigInteger, nullable=True),
    sa.Column("output_tokens", sa.BigInteger, nullable=True),
    sa.Column("model", sa.String(CATEGORY_INDEX_CHARS), nullable=True),
    sa.UniqueConstraint("experiment_id", "span_id", name="uq_spans_experiment_span"),
    # revision 0005: the indexes the API's queries use (see the migration for which query);
    # revision 0009 dropped the summary's duration index (aggregates replace it)
    sa.Index("ix_spans_experiment_seq", "experiment_id", "seq"),
    sa.Index("ix_spans_experiment_errors", "experiment_id", "seq",
             sqlite_where=sa.text("status = 'error'"), postgresql_where=sa.text("status = 'error'")),
    # revision 0007: one trace of an experiment (the web UI's trace page)
    sa.Index("ix_spans_experiment_trace", "experiment_id", "trace_id"),
)

metrics = sa.Table(
    "metrics",
    metadata,
    _seq(),
    sa.Column("experiment_id", sa.String(MAX_ID_LENGTH), nullable=False),
    sa.Column("span_id", sa.String(MAX_ID_LENGTH), nullable=False),
    sa.Column("trace_id", sa.String(MAX_ID_LENGTH), nullable=False),
    sa.Column("metric_type", sa.String(16), nullable=False),
    sa.Column("label", sa.String(MAX_NAME_LENGTH), nullable=False),
    sa.Column("score_value", sa.Float, nullable=True),
    #: The first CATEGORY_INDEX_CHARS characters (indexed); the full value is in ``doc``.
    sa.Column("categorical_value", sa.Text, nullable=True),
    sa.Column("boolean_value", sa.Boolean, nullable=True),
    sa.Column("timestamp_ms", sa.BigInteger, nullable=True),
    #: The metric as sent; NULL (revision 0006) when the columns above hold it exactly.
    sa.Column("doc", sa.Text, nullable=True),
    sa.UniqueConstraint(
        "experiment_id", "span_id", "metric_type", "label", name="uq_metrics_experiment_span_label"
    ),
)

#: Revision 0008: GenAI usage per experiment and model, added to at ingest for every newly
#: stored span that carries usage (``model`` is ``''`` for usage without a model), so the
#: summary reads a few rows instead of every span.
usage_totals = sa.Table(
    "usage_totals",
    metadata,
    sa.Column("experiment_id", sa.String(MAX_ID_LENGTH), primary_key=True),
    sa.Column("model", sa.String(CATEGORY_INDEX_CHARS), primary_key=True),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("spans", sa.BigInteger, nullable=False),
)

# Revision 0009: the summary's aggregates, added to at ingest for newly stored rows only
# (``store.aggregates``), so the summary reads a few rows at any experiment size.

#: Span statistics per experiment and scope (0: every span, 1: the units, ``is_root``).
span_totals = sa.Table(
    "span_totals",
    metadata,
    sa.Column("experiment_id", sa.String(MAX_ID_LENGTH), primary_key=True),
    sa.Column("scope", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("span_count", sa.BigInteger, nullable=False),
    sa.Column("error_count", sa.BigInteger, nullable=False),
    sa.Column("duration_sum", sa.Float, nullable=False),
    sa.Column("duration_min", sa.BigInteger, nullable=False),
    sa.Column("duration_max", sa.BigInteger, nullable=False),
)

#: Per metric (label, type): count, and for scores count / sum / min / max of the values.
metric_totals = sa.Table(
    "metric_totals",
    metadata,
    sa.Column("experiment_id", sa.String(MAX_ID_LENGTH), primary_key=True),
    sa.Column("label", sa.String(MAX_NAME_LENGTH), primary_key=True),
    sa.Column("metric_type", sa.String(16), primary_key=True),
    sa.Column("metric_count", sa.BigInteger, nullable=False),
    sa.Column("score_count", sa.BigInteger, nullable=False),
    sa.Column("score_sum", sa.Float, nullable=False),
    sa.Column("score_min", sa.Float, nullable=True),
    sa.Column("score_max", sa.Float, nullable=True),
)

#: Value counts of boolean (``true`` / ``false``) and categorical metrics (the first
#: CATEGORY_INDEX_CHARS characters, as ``metrics.categorical_value``).
metric_values = sa.Table(
    "metric_values",
    metadata,
    sa.Column("experiment_id", sa.String(MAX_ID_LENGTH), primary_key=True),
    sa.Column("label", sa.String(MAX_NAME_LENGTH), primary_key=True),
    sa.Column("metric_type", sa.String(16), primary_key=True),
    sa.Column("value", sa.Text, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)

#: Log-bucket histograms (``server.sketch``): series 0 every span's duration, 1 the units'
#: durations (``label`` ``''``), 2 a score metric's values (its label).
value_buckets = sa.Table(
    "value_buckets",
    metadata,
    sa.Column("experiment_id", sa.String(MAX_ID_LENGTH), primary_key=True),
    sa.Column("series", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("label", sa.String(MAX_NAME_LENGTH), primary_key=True),
    sa.Column("bucket", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("n", sa.BigInteger, nullable=False),
)

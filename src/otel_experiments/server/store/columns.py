"""The column order of span and metric rows, from parsing to insert to the aggregates."""

from __future__ import annotations

#: Columns of a span row's ``values`` and of a metric row, in order. The store adds
#: ``experiment_id`` (and ``received_at`` for spans) in front when inserting.
SPAN_COLUMNS = ("span_id", "trace_id", "parent_id", "name", "start_ns", "duration", "status",
                "is_root", "dataset_record_id", "user_id", "organization_id", "input_tokens",
                "output_tokens", "model", "doc")
METRIC_COLUMNS = ("span_id", "trace_id", "metric_type", "label", "score_value",
                  "categorical_value", "boolean_value", "timestamp_ms", "doc")

# Positions the aggregates read (``store.aggregates``).
DURATION_AT = SPAN_COLUMNS.index("duration")
STATUS_AT = SPAN_COLUMNS.index("status")
IS_ROOT_AT = SPAN_COLUMNS.index("is_root")
USAGE_AT = slice(SPAN_COLUMNS.index("input_tokens"), SPAN_COLUMNS.index("model") + 1)
METRIC_TYPE_AT = METRIC_COLUMNS.index("metric_type")
LABEL_AT = METRIC_COLUMNS.index("label")
SCORE_AT = METRIC_COLUMNS.index("score_value")
CATEGORY_AT = METRIC_COLUMNS.index("categorical_value")
BOOLEAN_AT = METRIC_COLUMNS.index("boolean_value")

"""The column order of span and metric rows, from parsing to insert to the aggregates, and
which span members the columns hold instead of the stored document."""

from __future__ import annotations

from typing import Any

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

#: The span members its columns hold exactly: the stored document leaves them out (a third
#: of its bytes) and :func:`span_document` puts them back. A document that still holds
#: ``span_id`` is whole (stored before, or a name its column does not hold as sent).
COLUMN_MEMBERS = ("trace_id", "span_id", "name", "start_ns", "duration", "status",
                  "parent_id")
_COLUMN_MEMBER_SET = frozenset(COLUMN_MEMBERS)


def narrow_document(span: dict[str, Any]) -> dict[str, Any]:
    """``span`` without :data:`COLUMN_MEMBERS` (the caller checks the columns hold them)."""
    return {k: v for k, v in span.items() if k not in _COLUMN_MEMBER_SET}


def span_document(stored: dict[str, Any], trace_id: str, span_id: str, parent_id: str | None,
                  name: str, start_ns: int, duration: int, status: str) -> dict[str, Any]:
    """The span as sent, from its stored document and its columns (members in the
    exporter's order)."""
    if "span_id" in stored:
        return stored
    doc = {"trace_id": trace_id, "span_id": span_id, "name": name, "start_ns": start_ns,
           "duration": duration, "status": status, "meta": stored.get("meta"),
           "tags": stored.get("tags")}
    if parent_id is not None:
        doc["parent_id"] = parent_id
    for key, value in stored.items():
        if key not in doc:
            doc[key] = value
    return doc

"""Storage: every query the server runs, through SQLAlchemy Core (SQLite and PostgreSQL)."""

from __future__ import annotations

from .base import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Page,
    decode_cursor,
    encode_cursor,
    new_id,
    now_iso,
    tag_map,
)
from .columns import METRIC_COLUMNS, SPAN_COLUMNS
from .events import (
    EventQueries,
    IngestResult,
    MetricRow,
    SpanRow,
    is_root_parent,
)
from .from_spans import FromSpansQueries, FromSpansResult, MetricCondition, SpanSelection
from .grouped import GROUP_COLUMNS, GroupedSummaryQueries, SpanFilters
from .resources import EXPERIMENT_STATUSES, ResourceQueries
from .summary import SummaryQueries


class Store(FromSpansQueries, ResourceQueries, EventQueries, SummaryQueries,
            GroupedSummaryQueries):
    """All queries over one engine (one write queue per process for SQLite)."""


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "EXPERIMENT_STATUSES",
    "GROUP_COLUMNS",
    "MAX_PAGE_SIZE",
    "METRIC_COLUMNS",
    "SPAN_COLUMNS",
    "FromSpansResult",
    "IngestResult",
    "MetricCondition",
    "MetricRow",
    "Page",
    "SpanFilters",
    "SpanRow",
    "SpanSelection",
    "Store",
    "decode_cursor",
    "encode_cursor",
    "is_root_parent",
    "new_id",
    "now_iso",
    "tag_map",
]

"""What every ingest path puts in a storage row, stated once: the values a span's tags give
its row (cached), the lookup ids, the span row's layout, and when a metric needs no
document. ``ingest`` (decoded JSON) and ``plain_decode`` (typed structs) both build rows
with these."""

from __future__ import annotations

import math
from typing import Any

from .. import attributes as attr
from ..models import validate_id
from .schema import CATEGORY_INDEX_CHARS
from .store import SpanRow, is_root_parent
from .usage import Usage

#: The tags a row reads; the first occurrence of a key wins, as in :func:`~.store.tag_map`.
TAG_KEYS = (attr.USER_ID, attr.ORGANIZATION_ID, "dataset_record_id", attr.EXPERIMENT_NAME,
            "experiment_name", attr.EXPERIMENT_FEATURE_SLUG, attr.EXPERIMENT_ENTRY)
_TAG_KEY_SET = frozenset(TAG_KEYS)

def value_in_columns(metric_type: str, value: Any) -> bool:
    """A metric's value columns hold ``value`` exactly (then, with the exporter's members,
    the metric is stored without a ``doc`` and rebuilt from its columns on read)."""
    if metric_type == attr.METRIC_TYPE_BOOLEAN:
        return True
    if metric_type == attr.METRIC_TYPE_SCORE:  # an int would come back as a float; SQLite
        return type(value) is float and bool(value or math.copysign(1.0, value) > 0)  # no -0.0
    return len(value) <= CATEGORY_INDEX_CHARS and "\x00" not in value


def _wanted_tags(tags: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition(":")
        if sep and key in _TAG_KEY_SET:
            found.setdefault(key, value)
    return found


#: Lookup-column values already found valid: user, organization and record ids repeat
#: across the spans of a run, so most lookups skip the checks. Bounded: cleared when full.
_VALID_IDS: dict[object, str] = {}
_VALID_IDS_MAX = 4096


def lookup_id(value: object) -> str | None:
    """``value`` if it may go in a lookup column (a valid id), else ``None``."""
    if value is None:
        return None
    known = _VALID_IDS.get(value) if type(value) is str else None
    if known is not None:
        return known
    try:
        valid = validate_id(value, "id")
    except (TypeError, ValueError):
        return None
    if len(_VALID_IDS) >= _VALID_IDS_MAX:
        _VALID_IDS.clear()
    _VALID_IDS[valid] = valid
    return valid


#: What a span's tags give its row: the record id tag (unchecked: a member of the span
#: wins over it), user and organization lookup values (checked), whether it is a marked
#: entry span, and the raw experiment name and feature slug.
TagValues = tuple[str | None, str | None, str | None, bool, str | None, str | None]


def tag_values(tags: dict[str, str]) -> TagValues:
    """The row's values from ``{key: value}`` of the tags in :data:`TAG_KEYS`."""
    get = tags.get
    return (get("dataset_record_id"), lookup_id(get(attr.USER_ID)),
            lookup_id(get(attr.ORGANIZATION_ID)), get(attr.EXPERIMENT_ENTRY) == "true",
            get(attr.EXPERIMENT_NAME) or get("experiment_name"),
            get(attr.EXPERIMENT_FEATURE_SLUG))


#: ``tag_values`` by the whole tags list: the spans of a run repeat a few tag lists (one
#: per user / organization / variant), and one lookup replaces splitting every tag.
#: Bounded in entries and in the characters its keys hold: cleared when either is reached.
_TAG_VALUES: dict[tuple[str, ...], TagValues] = {}
_TAG_VALUES_MAX = 4096
_TAG_VALUES_MAX_CHARS = 4 << 20
_tag_values_chars = 0


def cached_tag_values(tags: list[str]) -> TagValues | None:
    """:func:`tag_values` of a tags list; ``None`` unless every tag is a ``key:value``
    string (the schema's pattern). Raises ``TypeError`` for an unhashable member."""
    global _tag_values_chars
    key = tuple(tags)
    found = _TAG_VALUES.get(key)
    if found is not None:
        return found
    for tag in key:
        if type(tag) is not str or tag.find(":") < 1:
            return None
    found = tag_values(_wanted_tags(tags))
    chars = sum(map(len, key))
    if len(_TAG_VALUES) >= _TAG_VALUES_MAX or _tag_values_chars + chars > _TAG_VALUES_MAX_CHARS:
        _TAG_VALUES.clear()
        _tag_values_chars = 0
    if chars <= _TAG_VALUES_MAX_CHARS // 16:  # a huge list is not worth keeping
        _TAG_VALUES[key] = found
        _tag_values_chars += chars
    return found


def span_row(span_id: str, trace_id: str, parent: str | None, name: str, start: int,
             duration: int, status: str, record_id: str | None, usage: Usage, doc: str,
             tags: TagValues) -> SpanRow:
    """A span's row (:data:`~.store.SPAN_COLUMNS` order); ``record_id`` is the span's own
    ``dataset_record_id`` member, if any (it wins over the tag)."""
    if record_id is None:
        record_id = tags[0]
    values = (span_id, trace_id, parent, name, start, duration, status,
              # a unit of work: a trace root, or the entry span a plugin marked (a web
              # framework's server span, whose parent is another service's)
              is_root_parent(parent) or tags[3],
              lookup_id(record_id),
              tags[1], tags[2], *usage, doc)
    return SpanRow(values, tags[4], tags[5])

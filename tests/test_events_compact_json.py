"""The C encoder's JSON-payload compaction: the bytes orjson.dumps(orjson.loads(text)) gives,
or None for text outside the plain subset it compacts itself (then orjson does it)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_experiments.events import native

pytestmark = pytest.mark.skipif(not native.NATIVE, reason="the C encoder is not built")
compact_json = native._speedups.compact_json if native._speedups is not None else None

_scalars = (
    st.none() | st.booleans() | st.text(max_size=12)
    | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5),
    max_leaves=25,
)


def _canonical(text: str) -> bytes | None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


@settings(max_examples=400, deadline=None)
@given(_values, st.sampled_from([(",", ":"), (", ", ": "), (" , ", " : ")]),
       st.sampled_from([None, 2, "\t"]), st.booleans())
def test_compacted_text_is_what_orjson_writes(value: Any, separators: tuple[str, str],
                                              indent: Any, ensure_ascii: bool) -> None:
    text = json.dumps(value, separators=separators, indent=indent, ensure_ascii=ensure_ascii)
    assert compact_json is not None
    compacted = compact_json(text)
    if compacted is not None:
        assert compacted == _canonical(text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('{}[]",: \n\t\\u0019aefnrltsx-.+Ee')), max_size=30))
def test_any_text_is_compacted_right_or_left_to_orjson(text: str) -> None:
    assert compact_json is not None
    compacted = compact_json(text)
    if compacted is not None:  # only what orjson reads, and as orjson writes it
        assert compacted == _canonical(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":2}',  # orjson keeps the last value
        "-0",  # read back as 0
        "1.5", "1e3", "12345678901234567890",  # orjson's own number formatting
        '"\\u0041"', '"\\/"', '"\\u001F"',  # escapes orjson writes otherwise
        '"\\u000a"',  # orjson writes \n
        "[1,]", '{"a":1', "", " ", "tru", "01", "[" * 70 + "]" * 70,
        '"\x01"',  # a raw control character: invalid JSON
    ],
)
def test_outside_the_plain_subset_nothing_is_written(text: str) -> None:
    assert compact_json is not None
    assert compact_json(text) is None


def test_the_common_payloads_are_compacted() -> None:
    assert compact_json is not None
    payload = {"ticket_id": 7, "prompt": "Summarize \"this\"\n", "tags": ["a", "é"], "ok": True,
               "none": None, "nested": {"k": [1, -2, {"x": "\u001f"}]}}
    # as observe.input / output write them (ensure_ascii=False), and indented
    for text in (json.dumps(payload, ensure_ascii=False),
                 json.dumps(payload, indent=2, ensure_ascii=False)):
        assert compact_json(text) == orjson.dumps(payload)
    assert compact_json(json.dumps(payload)) is None  # "\u00e9": orjson writes "é"

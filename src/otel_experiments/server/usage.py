"""GenAI token usage: what a span's ``attributes`` say it consumed, and how usage adds up.

A span carries usage when its ``attributes`` hold a valid input or output token count
(``gen_ai.usage.input_tokens`` / ``output_tokens``, else the older ``prompt_tokens`` /
``completion_tokens``). A count is valid when it is a JSON integer from 0 to
:data:`MAX_TOKENS`: anything else (a float, a string, a negative or absurd number) is
ignored, never an error, because usage is a by-product of tracing and must not cost a
span. The model is ``gen_ai.response.model`` (what answered), else ``gen_ai.request.model``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import attributes as attr
from .schema import CATEGORY_INDEX_CHARS

#: Larger counts are ignored: no real call uses two billion tokens, and the bound keeps a
#: sum over any number of spans inside a 64-bit column.
MAX_TOKENS = 2**31 - 1
#: Models are stored cut to this many characters (an index key, as categorical values).
MODEL_CHARS = CATEGORY_INDEX_CHARS
#: The ``model`` key of usage without a model in the aggregate table (a key column cannot be
#: NULL and stay unique); an empty model string is no model.
NO_MODEL = ""

Usage = tuple[int | None, int | None, str | None]
NO_USAGE: Usage = (None, None, None)


def _tokens(attrs: dict[str, Any], key: str, legacy: str) -> int | None:
    for name in (key, legacy):
        value = attrs.get(name)
        if type(value) is int and 0 <= value <= MAX_TOKENS:
            return value
    return None


def _model(attrs: dict[str, Any]) -> str | None:
    for name in (attr.GEN_AI_RESPONSE_MODEL, attr.GEN_AI_REQUEST_MODEL):
        value = attrs.get(name)
        if isinstance(value, str) and value:
            value = value[:MODEL_CHARS].replace("\x00", "\ufffd")
            try:
                value.encode()
            except UnicodeEncodeError:  # a lone surrogate: not storable text
                continue
            return value
    return None


def span_usage(span: dict[str, Any]) -> Usage:
    """``(input_tokens, output_tokens, model)`` of a span event (``None`` where absent);
    the model is kept only for a span that carries token counts."""
    attrs = span.get("attributes")
    if not attrs or not isinstance(attrs, dict):
        return NO_USAGE
    input_tokens = _tokens(attrs, attr.GEN_AI_INPUT_TOKENS, attr.GEN_AI_PROMPT_TOKENS)
    output_tokens = _tokens(attrs, attr.GEN_AI_OUTPUT_TOKENS, attr.GEN_AI_COMPLETION_TOKENS)
    if input_tokens is None and output_tokens is None:
        return NO_USAGE
    return input_tokens, output_tokens, _model(attrs)


def add_usage(totals: dict[str, list[int]], usages: Iterable[Usage]) -> None:
    """Add spans' usage into ``{model key: [input, output, spans]}`` (spans without usage
    add nothing)."""
    for input_tokens, output_tokens, model in usages:
        if input_tokens is None and output_tokens is None:
            continue
        item = totals.setdefault(NO_MODEL if model is None else model, [0, 0, 0])
        item[0] += input_tokens or 0
        item[1] += output_tokens or 0
        item[2] += 1


def usage_document(rows: Iterable[tuple[str | None, Any, Any, Any]], *,
                   with_spans: bool = True) -> dict[str, Any]:
    """The API's ``usage`` object from ``(model, input, output, spans)`` rows: totals, and
    one item per model (most tokens first, then by model)."""
    by_model = []
    for model, input_tokens, output_tokens, n in rows:
        item: dict[str, Any] = {"model": model or None, "input_tokens": int(input_tokens or 0),
                                "output_tokens": int(output_tokens or 0), "spans": int(n or 0)}
        if item["spans"]:
            by_model.append(item)
    by_model.sort(key=lambda i: (-(i["input_tokens"] + i["output_tokens"]), i["model"] or ""))
    out: dict[str, Any] = {
        "input_tokens": sum(i["input_tokens"] for i in by_model),
        "output_tokens": sum(i["output_tokens"] for i in by_model),
    }
    if with_spans:
        out["spans"] = sum(i["spans"] for i in by_model)
    out["by_model"] = by_model
    return out

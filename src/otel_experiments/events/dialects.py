"""ddtrace's wire dialect of experiment events, to and from ours. Pure: no I/O.

Datadog's SDK (``ddtrace.llmobs``) ships an experiment in two kinds of requests:

* ``POST /api/unstable/llm-obs/v1/experiments/{id}/events`` with
  ``{"data": {"type": "experiments", "attributes": {"scope", "metrics", "tags"[, "spans"]}}}``:
  evaluator metrics (``metric_source`` ``custom``, one per record span, or ``summary``,
  experiment-level with empty span and trace ids), metric types ``score`` / ``boolean`` /
  ``categorical`` / ``json``, each with ``error``, ``tags``, maybe ``reasoning``,
  ``assessment``, ``status``, ``metadata``;
* ``POST /api/v2/llmobs`` (the span intake): a JSON array of envelopes, each with ``spans``.

Its span ids are decimal strings of 64-bit integers, a root span's ``parent_id`` is
``"undefined"``, trace ids are 32 hex digits (decimal when they fit in 64 bits). Ours are
16 / 32 lowercase hex digits and a root span has no ``parent_id``; the same span
therefore keeps one identity (experiment id + hex span id) whichever dialect carried it.

What our format has no member for is kept, never dropped silently: a metric's ddtrace-only
fields go under ``metadata["_dd"]`` (a ``json`` metric becomes ``categorical`` holding the
compact JSON text, the value itself kept as ``metadata["_dd"]["json_value"]``); a span's
kind becomes the tag ``span_kind:...`` and its token metrics ``meta.metadata["_dd"]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "DDTRACE",
    "DDTRACE_EVENTS_TYPE",
    "DdtraceEvents",
    "ddtrace_envelope",
    "ddtrace_items",
    "from_ddtrace_events",
    "from_ddtrace_intake",
    "is_ddtrace_events",
    "metric_to_ddtrace",
    "metric_value",
    "span_from_ddtrace",
    "span_id_from_ddtrace",
    "span_id_to_ddtrace",
    "span_to_ddtrace",
    "trace_id_from_ddtrace",
]

#: The exporter's ``dialect`` naming this one (``OTEL_EXPERIMENTS_DIALECT``; ours is "otel").
DDTRACE: Final = "ddtrace"
#: ``data.type`` of ddtrace's experiment events body (ours is ``experiment_events``).
DDTRACE_EVENTS_TYPE: Final = "experiments"
#: The members of a metric our format has; everything else moves to ``metadata._dd``.
_OUR_METRIC_KEYS = frozenset({"span_id", "trace_id", "metric_type", "label", "score_value",
                              "categorical_value", "boolean_value", "timestamp_ms",
                              "metadata"})
_OUR_META_KEYS = ("input", "output", "expected_output")
_ROOT_PARENTS = frozenset({"", "0", "undefined", "None"})
_HEX = frozenset("0123456789abcdef")
_UINT64 = 2**64


# -- ids ---------------------------------------------------------------------------------


def _decimal(value: object, limit: int) -> int | None:
    """A ddtrace id (decimal text or an int) as an int in ``1 .. limit-1``, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 40:
        number = int(value)
    else:
        return None
    return number if 0 < number < limit else None


def span_id_from_ddtrace(value: object) -> object:
    """Decimal span id -> 16 hex digits; anything else is returned unchanged (the events
    schema then refuses it, naming the field)."""
    number = _decimal(value, _UINT64)
    return value if number is None else f"{number:016x}"


def trace_id_from_ddtrace(value: object) -> object:
    """32 hex digits stay (lower-cased); a decimal (a 64-bit trace id) -> 32 hex digits."""
    if isinstance(value, str) and len(value) == 32 and set(value.lower()) <= _HEX:
        return value.lower()
    number = _decimal(value, 2**128)
    return value if number is None else f"{number:032x}"


def span_id_to_ddtrace(span_id: str) -> str:
    """16 hex digits -> the decimal text ddtrace sends."""
    return str(int(span_id, 16))


# -- ddtrace -> ours ---------------------------------------------------------------------


@dataclass
class DdtraceEvents:
    """A ddtrace events body in our terms: ``body`` is an ``experiment_events`` body (valid
    or not: the server validates it as any other), ``summary_metrics`` the experiment-level
    metrics (translated like the others, without span and trace ids)."""

    body: dict[str, Any]
    summary_metrics: list[dict[str, Any]] = field(default_factory=list)


def is_ddtrace_events(body: object) -> bool:
    """``True`` for ddtrace's ``{"data": {"type": "experiments", ...}}`` events body."""
    return (isinstance(body, dict) and isinstance(body.get("data"), dict)
            and body["data"].get("type") == DDTRACE_EVENTS_TYPE)


def _tags(value: object) -> list[str]:
    """``key:value`` strings only (ddtrace may send ``env:`` with an empty value: kept)."""
    if not isinstance(value, list):
        return []
    return [t for t in value if isinstance(t, str) and t.partition(":")[0] and ":" in t]


def _tag(tags: Iterable[str], key: str) -> str | None:
    prefix = f"{key}:"
    return next((t[len(prefix):] for t in tags if t.startswith(prefix)), None)


def _error(meta: Mapping[str, Any]) -> dict[str, Any]:
    raw = meta.get("error")
    raw = raw if isinstance(raw, dict) else {}

    def text(key: str) -> str | None:
        value = raw.get(key)
        return value if isinstance(value, str) and value else None

    return {"type": text("type"), "message": text("message") or text("type") or "error",
            "stack": text("stack")}


def span_from_ddtrace(span: Mapping[str, Any]) -> dict[str, Any]:
    """One ddtrace span event -> our span event."""
    raw_meta = span.get("meta")
    meta_in: Mapping[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    status = "error" if span.get("status") == "error" else "ok"
    meta: dict[str, Any] = {k: meta_in[k] for k in _OUR_META_KEYS if k in meta_in}
    metadata = meta_in.get("metadata")
    if metadata is not None:
        metadata = dict(metadata) if isinstance(metadata, dict) else {"value": metadata}
    dd_extra: dict[str, Any] = {}
    if isinstance(span.get("metrics"), dict) and span["metrics"]:
        dd_extra["metrics"] = span["metrics"]  # token counts of LLM spans
    if dd_extra:
        metadata = {**(metadata or {}), "_dd": dd_extra}
    if metadata is not None:
        meta["metadata"] = metadata
    if status == "error":
        meta["error"] = _error(meta_in)
    tags = _tags(span.get("tags"))
    kind = meta_in.get("span.kind")
    if kind is None and isinstance(meta_in.get("span"), dict):
        kind = meta_in["span"].get("kind")
    if isinstance(kind, str) and kind and _tag(tags, "span_kind") is None:
        tags.append(f"span_kind:{kind}")
    out: dict[str, Any] = {
        "trace_id": trace_id_from_ddtrace(span.get("trace_id")),
        "span_id": span_id_from_ddtrace(span.get("span_id")),
        "name": span.get("name"),
        "start_ns": span.get("start_ns"),
        "duration": span.get("duration"),
        "status": status,
        "meta": meta,
        "tags": tags,
    }
    parent = span.get("parent_id")
    if parent is not None and str(parent) not in _ROOT_PARENTS:
        out["parent_id"] = span_id_from_ddtrace(parent)
    usage = _usage_from_ddtrace(span.get("metrics"), meta_in.get("model_name"))
    if usage:
        out["attributes"] = usage
    # the canonical id is the stored record's (a deduplicated insert keeps the client's
    # fresh id as dataset_record_id: see server/store/ddtrace.py)
    record_id = _tag(tags, "dataset_record_canonical_id") or _tag(tags, "dataset_record_id")
    if record_id:
        out["dataset_record_id"] = record_id
    return out


def _metric_value(metric: Mapping[str, Any]) -> tuple[str, str, Any, dict[str, Any]]:
    """``(our type, value key, value, extra _dd members)`` of a ddtrace metric."""
    mtype = metric.get("metric_type")
    value = metric.get(f"{mtype}_value") if isinstance(mtype, str) else None
    if mtype == "json" or (mtype in ("score", "boolean", "categorical") and value is None):
        # no such type (json) or no value (the evaluator failed or returned None): kept as
        # categorical text so it still counts per record; the original under _dd
        text = "" if value is None else json.dumps(value, separators=(",", ":"),
                                                    sort_keys=True, default=str)
        return "categorical", "categorical_value", text, {
            "metric_type": mtype, f"{mtype}_value": value}
    if mtype == "score":
        return "score", "score_value", value, {}
    if mtype == "boolean":
        return "boolean", "boolean_value", value, {}
    return "categorical", "categorical_value", value, {}  # (bad types fail validation)


def metric_from_ddtrace(metric: Mapping[str, Any], *, summary: bool = False) -> dict[str, Any]:
    """One ddtrace metric -> ours (``summary``: no span or trace id)."""
    mtype, key, value, extra = _metric_value(metric)
    # (empty members and the experiment id, which the path names, are noise)
    dd = {k: v for k, v in metric.items()
          if k not in _OUR_METRIC_KEYS and not k.endswith("_value")
          and k != "experiment_id" and v not in (None, [], {}, "")}
    dd.update(extra)
    metadata = metric.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    if dd:
        metadata["_dd"] = dd
    out: dict[str, Any] = {"metric_type": mtype, "label": metric.get("label"), key: value,
                           "timestamp_ms": metric.get("timestamp_ms")}
    if not summary:
        out = {"span_id": span_id_from_ddtrace(metric.get("span_id")),
               "trace_id": trace_id_from_ddtrace(metric.get("trace_id")), **out}
    if metadata:
        out["metadata"] = metadata
    return out


def metric_value(metric: Mapping[str, Any]) -> Any:
    """The value a translated metric carries, as ddtrace had it (``None``, a JSON value)."""
    metadata = metric.get("metadata")
    dd = metadata.get("_dd") if isinstance(metadata, dict) else None
    if isinstance(dd, dict) and isinstance(dd.get("metric_type"), str):
        return dd.get(f"{dd['metric_type']}_value")
    for key in ("score_value", "boolean_value", "categorical_value"):
        if key in metric:
            return metric[key]
    return None


def _is_summary(metric: Mapping[str, Any]) -> bool:
    return metric.get("metric_source") == "summary" or metric.get("span_id") in ("", None)


def from_ddtrace_events(body: Mapping[str, Any]) -> DdtraceEvents:
    """ddtrace's ``experiments`` events body -> ours plus its summary metrics."""
    data = body.get("data")
    attrs = data.get("attributes") if isinstance(data, dict) else None
    attrs = attrs if isinstance(attrs, dict) else {}
    raw_spans = attrs.get("spans") or []
    raw_metrics = attrs.get("metrics") or []
    spans = [span_from_ddtrace(s) if isinstance(s, dict) else s
             for s in (raw_spans if isinstance(raw_spans, list) else [])]
    metrics: list[Any] = []
    summary: list[dict[str, Any]] = []
    for m in raw_metrics if isinstance(raw_metrics, list) else []:
        if isinstance(m, dict) and _is_summary(m):
            summary.append(metric_from_ddtrace(m, summary=True))
        else:
            metrics.append(metric_from_ddtrace(m) if isinstance(m, dict) else m)
    # what is not a list stays as sent, for the events schema to refuse by name
    return DdtraceEvents(
        {"data": {"type": "experiment_events", "attributes": {
            "spans": spans if isinstance(raw_spans, list) else raw_spans,
            "metrics": metrics if isinstance(raw_metrics, list) else raw_metrics}}},
        summary)


def from_ddtrace_intake(payload: object) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """The span intake's payload (envelopes holding ``spans``) -> our spans per experiment
    (from each span's ``experiment_id`` tag), and how many spans named no experiment."""
    envelopes = payload if isinstance(payload, list) else [payload]
    by_experiment: dict[str, list[dict[str, Any]]] = {}
    ignored = 0
    for envelope in envelopes:
        spans = envelope.get("spans") if isinstance(envelope, dict) else None
        for span in spans if isinstance(spans, list) else []:
            experiment_id = _tag(_tags(span.get("tags")), "experiment_id") if isinstance(
                span, dict) else None
            if not experiment_id:
                ignored += 1
                continue
            by_experiment.setdefault(experiment_id, []).append(span_from_ddtrace(span))
    return by_experiment, ignored


# -- ours -> ddtrace (the exporter's ``dialect="ddtrace"``) -------------------------------

#: Our tag keys and ddtrace's spelling of the same thing (both are sent).
_TAG_SPELLINGS: Final = {"experiment.id": "experiment_id", "experiment.name": "experiment_name",
                         "service.name": "service", "deployment.environment": "env"}


#: ddtrace's LLM span ``metrics`` keys <-> the GenAI semantic-convention attributes.
_DD_TOKEN_KEYS: Final = (
    ("input_tokens", "gen_ai.usage.input_tokens"),
    ("output_tokens", "gen_ai.usage.output_tokens"),
)


def _usage_from_ddtrace(metrics: object, model: object) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    if isinstance(metrics, dict):
        for dd_key, key in _DD_TOKEN_KEYS:
            value = metrics.get(dd_key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value) and value >= 0 and value == int(value):
                usage[key] = int(value)
    if isinstance(model, str) and model:
        usage["gen_ai.request.model"] = model
    return usage


def _usage_to_ddtrace(attributes: Mapping[str, Any], meta: dict[str, Any]) -> dict[str, int]:
    metrics = {dd_key: attributes[key] for dd_key, key in _DD_TOKEN_KEYS
               if isinstance(attributes.get(key), int)}
    if metrics:
        metrics["total_tokens"] = sum(metrics.values())
    model = attributes.get("gen_ai.response.model") or attributes.get("gen_ai.request.model")
    if isinstance(model, str):
        meta["model_name"] = model
    return metrics


def span_to_ddtrace(event: Mapping[str, Any]) -> dict[str, Any]:
    """Our span event -> the span ddtrace sends (decimal ids, ``parent_id`` always set)."""
    tags = list(event.get("tags", []))
    for tag in list(tags):
        key, _, value = tag.partition(":")
        if key in _TAG_SPELLINGS:
            tags.append(f"{_TAG_SPELLINGS[key]}:{value}")
    record_id = event.get("dataset_record_id")
    if record_id is not None:
        tags.append(f"dataset_record_id:{record_id}")
    parent = event.get("parent_id")
    meta = dict(event.get("meta", {}))
    meta["span.kind"] = "experiment" if parent is None else "task"
    out = {
        "span_id": span_id_to_ddtrace(event["span_id"]),
        "trace_id": event["trace_id"],
        "parent_id": "undefined" if parent is None else span_id_to_ddtrace(parent),
        "name": event["name"], "start_ns": event["start_ns"], "duration": event["duration"],
        "status": event["status"], "meta": meta, "tags": tags,
    }
    attributes = event.get("attributes")
    if attributes:
        metrics = _usage_to_ddtrace(attributes, meta)
        if metrics:
            out["metrics"] = metrics
    return out


def metric_to_ddtrace(metric: Mapping[str, Any], experiment_id: str) -> dict[str, Any]:
    """Our metric -> ddtrace's (``metric_source`` custom, decimal span id)."""
    out = {k: v for k, v in metric.items() if k != "metadata"}
    out["span_id"] = span_id_to_ddtrace(metric["span_id"])
    out.update(metric_source="custom", error=None, tags=[], experiment_id=experiment_id)
    if "metadata" in metric:
        out["metadata"] = metric["metadata"]
    return out


def ddtrace_items(experiment_id: str, items: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]
                  ) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The exporter's (span, metrics) items in ddtrace's dialect."""
    return [(span_to_ddtrace(event), [metric_to_ddtrace(m, experiment_id) for m in metrics])
            for event, metrics in items]


_OUR_PREFIX: Final = b'{"data":{"type":"experiment_events","attributes":{"spans":['
_OUR_SUFFIX: Final = b"]}}}"


_DDTRACE_PREFIX: Final = (b'{"data":{"type":"experiments","attributes":{"scope":"experiments",'
                           b'"spans":[')


def ddtrace_envelope(body: bytes) -> bytes:
    """An encoded ``experiment_events`` body re-wrapped as ddtrace's ``experiments`` body:
    the span and metric fragments stay byte for byte (each span carries its experiment's
    tags, so the body-level ``tags`` ddtrace may add are left out)."""
    if not (body.startswith(_OUR_PREFIX) and body.endswith(_OUR_SUFFIX)):
        raise ValueError("not an encoded experiment_events body")
    return _DDTRACE_PREFIX + body[len(_OUR_PREFIX):]

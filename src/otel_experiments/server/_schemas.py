"""JSON Schemas of the OpenAPI components: requests as strict as the server, real responses.

Request schemas follow the checks of :mod:`.validation`, :mod:`.parsing` and the routes
(a JSON:API ``type`` may be singular or plural, absent or null; unknown attributes are
ignored; ``null`` means "not given" for optional attributes). The events body is the
package's own ``experiment_events.schema.json`` plus the bounds storage adds.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

from ..events import load_events_schema
from ..models import MAX_NAME_LENGTH
from ._patterns import TEXT_PATTERN, id_pattern, name_pattern, status_pattern
from .parsing import DATASET_TYPES, EXPERIMENT_TYPES, PROJECT_TYPES, RECORD_TYPES
from .store import EXPERIMENT_STATUSES
from .store.from_spans import EXPECTED_SOURCES
from .validation import INT64_MAX

JsonSchema = dict[str, Any]

INT32_MAX = 2**31 - 1
#: Integer members of the events schema that storage keeps in 64-bit columns.
_INT64_MEMBERS = (("span", "start_ns"), ("span", "duration"), ("metric", "timestamp_ms"))


def ref(name: str) -> JsonSchema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: JsonSchema) -> JsonSchema:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(properties: dict[str, JsonSchema], required: tuple[str, ...] = (),
         **extra: Any) -> JsonSchema:
    schema: JsonSchema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def _type_member(types: frozenset[str]) -> JsonSchema:
    return {"enum": [*sorted(types), None], "description": "Optional; singular or plural."}


def _document(data: JsonSchema, **members: JsonSchema) -> JsonSchema:
    return _obj({"data": data, **members}, ("data",))


def _resource(type_: str, attributes: JsonSchema) -> JsonSchema:
    return _obj({"type": {"const": type_}, "id": {"type": "string"}, "attributes": attributes},
                ("type", "id", "attributes"))


def _required_all(properties: dict[str, JsonSchema]) -> JsonSchema:
    return _obj(properties, tuple(properties))


_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_INTEGER = {"type": "integer"}
_OBJECT = {"type": "object"}
_PAGE_META = _obj({"page": _required_all({"size": _INTEGER, "next_cursor": _NULLABLE_STRING})},
                  ("page",))
_LINKS = _required_all({"next": _NULLABLE_STRING})


def _list(item: str, meta: dict[str, JsonSchema] | None = None) -> JsonSchema:
    meta_schema = copy.deepcopy(_PAGE_META)
    for key, schema in (meta or {}).items():
        meta_schema["properties"][key] = schema
        meta_schema["required"].append(key)
    return _obj({"data": {"type": "array", "items": ref(item)}, "meta": meta_schema,
                 "links": _LINKS}, ("data", "meta", "links"))


def _events_schemas(max_items: int) -> dict[str, JsonSchema]:
    """The events schema with its ``$defs`` as components (``Events_<name>``)."""
    schema = load_events_schema()
    defs = schema.pop("$defs")
    for key in ("$schema", "$id"):
        schema.pop(key, None)
    for owner, member in _INT64_MEMBERS:
        defs[owner]["properties"][member]["maximum"] = INT64_MAX
    # JSON numbers beyond a double are refused: they cannot be stored.
    defs["metric"]["properties"]["score_value"].update(
        minimum=-sys.float_info.max, maximum=sys.float_info.max)
    attrs = schema["properties"]["data"]["properties"]["attributes"]["properties"]
    for key in ("spans", "metrics"):
        attrs[key]["maxItems"] = max_items

    def relink(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (f"#/components/schemas/Events_{v.removeprefix('#/$defs/')}"
                        if k == "$ref" else relink(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [relink(v) for v in node]
        return node

    out = {f"Events_{name}": relink(value) for name, value in defs.items()}
    out["EventsBody"] = relink(schema)
    span_read = copy.deepcopy(out["Events_span"])
    span_read["properties"]["metrics"] = {"type": "array", "items": ref("Events_metric")}
    span_read["required"].append("metrics")
    out["SpanAttributes"] = span_read
    return out


def _request_schemas(max_items: int) -> dict[str, JsonSchema]:
    opt_id = _nullable(ref("Id"))
    opt_text = _nullable(ref("Text"))
    opt_object = _nullable(_OBJECT)
    record = _obj({
        "type": _type_member(RECORD_TYPES),
        "id": opt_id,
        "attributes": _obj({
            "input": {"description": "Required; any JSON value."},
            "expected_output": {}, "metadata": opt_object,
            "tags": _nullable({"type": "array", "items": _STRING})}, ("input",)),
    }, ("attributes",),
        # ``attributes.id`` is read only when ``data.id`` is absent.
        **{"if": {"required": ["id"]}, "then": {},
           "else": {"properties": {"attributes": {"properties": {"id": opt_id}}}}})
    return {
        "ProjectCreate": _document(_obj({
            "type": _type_member(PROJECT_TYPES),
            "attributes": _obj({"name": ref("Name"), "description": opt_text}, ("name",)),
        }, ("attributes",))),
        "DatasetCreate": _document(_obj({
            "type": _type_member(DATASET_TYPES),
            "attributes": _obj({"name": ref("Name"), "project_id": opt_id,
                                "description": opt_text, "metadata": opt_object}, ("name",)),
        }, ("attributes",))),
        "RecordsCreate": _document({"oneOf": [
            record, {"type": "array", "items": record, "minItems": 1, "maxItems": max_items}]}),
        "RecordUpdate": _document(_obj({
            "type": _type_member(RECORD_TYPES),
            "attributes": _obj({
                "input": {}, "expected_output": {}, "metadata": opt_object,
                "tags": _nullable({"type": "array", "items": _STRING}),
            }, anyOf=[{"required": [key]} for key in
                      ("input", "expected_output", "metadata", "tags")]),
        }, ("attributes",))),
        "RecordsFromSpansCreate": _from_spans_request(max_items),
        "ExperimentCreate": _document(_obj({
            "type": _type_member(EXPERIMENT_TYPES),
            "id": opt_id,
            "attributes": _obj({
                "name": ref("Name"), "description": opt_text, "project_id": opt_id,
                "dataset_id": opt_id, "feature_slug": opt_id,
                "dataset_version": _nullable({**_INTEGER, "minimum": 0, "maximum": INT32_MAX}),
                "status": _nullable(ref("Status")), "config": opt_object, "metadata": opt_object,
            }, ("name",)),
        }, ("attributes",))),
        "ExperimentUpdate": _document(_obj({
            "type": _type_member(EXPERIMENT_TYPES),
            "attributes": _obj({
                "name": _nullable(ref("Name")), "description": opt_text,
                "status": _nullable(ref("Status")), "feature_slug": opt_id,
                "config": opt_object, "metadata": opt_object,
            }, description="Absent or null attributes stay as they are."),
        })),
    }


def _from_spans_request(max_items: int) -> JsonSchema:
    """``POST /datasets/{id}/from-spans`` (``routes/from_spans.py``)."""
    opt_id = _nullable(ref("Id"))
    ns = _nullable({**_INTEGER, "minimum": 0, "maximum": INT64_MAX})
    number = _nullable({"type": "number"})
    metric = _obj({"label": ref("Name"),
                   "equals": {"type": ["boolean", "number", "string", "null"]},
                   "min": number, "max": number}, ("label",))
    attrs = _obj({
        "experiment_id": opt_id, "feature_slug": opt_id,
        "roots_only": {"type": ["boolean", "null"]},
        "span_name": _nullable(ref("Name")),
        "status": {"enum": ["ok", "error", None]},
        "start_after_ns": ns, "start_before_ns": ns,
        "metric": _nullable(metric),
        "expected_output": {"enum": [*EXPECTED_SOURCES, None]},
        "limit": _nullable({**_INTEGER, "minimum": 1, "maximum": max_items}),
    }, anyOf=[{"required": [key], "properties": {key: ref("Id")}}
              for key in ("experiment_id", "feature_slug")],
        description="Which spans (all filters must hold) and where the expected output "
                    "comes from (default: the span's output).")
    return _document(_obj({"type": {"enum": ["dataset_records_from_spans", None]},
                           "attributes": attrs}, ("attributes",)))


def _latency() -> JsonSchema:
    return _required_all({key: {"type": ["number", "null"]}
                          for key in ("mean", "min", "max", "p50", "p95")})


def _span_stats() -> JsonSchema:
    return _required_all({"span_count": _INTEGER, "error_count": _INTEGER,
                          "error_rate": {"type": ["number", "null"]}, "latency_ns": _latency()})


def _cost() -> JsonSchema:
    """``cost`` beside ``usage`` when the server has a price table (``server/costs.py``)."""
    usd = {"type": "number", "minimum": 0}
    item = _required_all({"model": _NULLABLE_STRING, "input_tokens": _INTEGER,
                          "output_tokens": _INTEGER, "cost_usd": {"type": ["number", "null"]}})
    return _required_all({"total_usd": usd, "complete": {"type": "boolean"},
                          "unpriced": {"type": "array", "items": _NULLABLE_STRING},
                          "by_model": {"type": "array", "items": item}}) | {
        "description": "Only when the server has a price table (OTEL_EXPERIMENTS_PRICES): "
                       "USD per the user's prices; unpriced models are listed, not guessed."}


def _usage(*, with_spans: bool) -> JsonSchema:
    """GenAI token usage (``server.usage``): totals and one item per model."""
    count = {**_INTEGER, "minimum": 0}
    item = _required_all({"model": _NULLABLE_STRING, "input_tokens": count,
                          "output_tokens": count, "spans": count})
    totals = {"input_tokens": count, "output_tokens": count}
    if with_spans:
        totals["spans"] = count
    return _required_all({**totals, "by_model": {"type": "array", "items": item}})


def _response_schemas() -> dict[str, JsonSchema]:
    stamp = _STRING
    project = _required_all({"name": _STRING, "description": _STRING, "created_at": stamp,
                             "updated_at": stamp})
    dataset = _required_all({
        "project_id": _NULLABLE_STRING, "name": _STRING, "description": _STRING,
        "metadata": _OBJECT, "current_version": _INTEGER, "created_at": stamp,
        "updated_at": stamp})
    dataset["properties"]["record_count"] = _INTEGER
    record = _required_all({
        "dataset_id": _STRING, "input": {}, "expected_output": {}, "metadata": _OBJECT,
        "tags": {"type": "array", "items": _STRING}, "version": _INTEGER, "created_at": stamp})
    experiment = _required_all({
        "project_id": _NULLABLE_STRING, "dataset_id": _NULLABLE_STRING,
        "dataset_version": {"type": ["integer", "null"]}, "name": _STRING,
        "description": _STRING, "feature_slug": _NULLABLE_STRING,
        "status": {"enum": sorted(EXPERIMENT_STATUSES)}, "config": _OBJECT,
        "metadata": _OBJECT, "created_at": stamp, "updated_at": stamp})
    counts = _required_all({key: {**_INTEGER, "minimum": 0} for key in (
        "accepted_spans", "duplicate_spans", "accepted_metrics", "duplicate_metrics")})
    counts["properties"]["experiment_created"] = {"type": "boolean"}
    counts["required"].append("experiment_created")
    metric_summary = _obj({
        "label": _STRING, "metric_type": {"enum": ["score", "categorical", "boolean"]},
        "count": _INTEGER, **{key: {"type": ["number", "null"]}
                              for key in ("mean", "min", "max", "p50", "p95")},
        "value_counts": {"type": "object", "additionalProperties": _INTEGER},
    }, ("label", "metric_type", "count"))
    summary = _span_stats()
    summary["properties"].update(root_spans=_span_stats(),
                                 metrics={"type": "array", "items": metric_summary},
                                 usage=_usage(with_spans=True), cost=_cost())
    summary["required"] += ["root_spans", "metrics", "usage"]
    number = {"type": "number"}
    delta = _required_all({
        "label": _STRING, "type": {"enum": ["boolean", "score"]}, "pairs": _INTEGER,
        "a": number, "b": number, "delta": number, "ci_low": number, "ci_high": number,
        "p_value": number, "test": {"enum": ["mcnemar", "wilcoxon"]}, "confidence": number,
        "lower_is_better": {"type": "boolean"},
        "verdict": {"enum": ["improved", "regressed", "no significant change"]}})
    comparison_props: dict[str, JsonSchema] = {"a": _STRING, "b": _STRING, "confidence": number,
                        "common_records": _INTEGER,
                        "metrics": {"type": "array", "items": delta},
                        "usage": _required_all({side: _usage(with_spans=True)
                                                for side in ("a", "b")})}
    # ``cost`` only when the server has a price table (``routes/compare.py``).
    comparison = _obj({**comparison_props,
                       "cost": _required_all({side: _cost() for side in ("a", "b")})},
                      tuple(comparison_props))
    version_meta = _required_all({"dataset_version": _INTEGER})
    error = _obj({
        "status": {"type": "string", "pattern": "^[45][0-9]{2}$"}, "title": _STRING,
        "detail": _STRING,
        "source": {"oneOf": [_required_all({"pointer": _STRING}),
                             _required_all({"parameter": _STRING})]},
    }, ("status", "title", "detail"))
    return {
        "Project": _resource("projects", project),
        "Dataset": _resource("datasets", dataset),
        "Record": _resource("dataset_records", record),
        "Experiment": _resource("experiments", experiment),
        "Span": _resource("spans", ref("SpanAttributes")),
        "ProjectDocument": _document(ref("Project")),
        "DatasetDocument": _document(ref("Dataset")),
        "ExperimentDocument": _document(ref("Experiment")),
        "RecordsCreated": _document({"oneOf": [ref("Record"), {
            "type": "array", "items": ref("Record")}]}, meta=version_meta),
        "RecordUpdated": _document(ref("Record"), meta=version_meta),
        "RecordsFromSpans": _document({"type": "array", "items": ref("Record")},
                                      meta=_required_all({key: {**_INTEGER, "minimum": 0} for key in (
                                          "dataset_version", "matched_spans", "added",
                                          "duplicates", "without_input")})),
        "RecordDeleted": _obj({"meta": _required_all({"dataset_version": _INTEGER,
                                                      "deleted": _STRING})}, ("meta",)),
        "ExperimentRecordList": _list("ExperimentRecord"),
        "ExperimentRecord": _resource("experiment_records", {
            **_OBJECT, "properties": {"usage": _usage(with_spans=False), "cost": _cost()}}),
        "ExperimentDeleted": _obj({"meta": _required_all({"deleted": _STRING,
                                                          "deleted_spans": _INTEGER})},
                                  ("meta",)),
        "ProjectList": _list("Project"),
        "DatasetList": _list("Dataset"),
        "RecordList": _list("Record", {"dataset_version": _INTEGER}),
        "ExperimentList": _list("Experiment"),
        "SpanList": _list("Span"),
        "EventsAccepted": _document(_resource("experiment_events", counts)),
        "SummaryDocument": _document(_resource("experiment_summaries", summary)),
        "ComparisonDocument": _document(_resource("experiment_comparisons", comparison)),
        "Health": _required_all({"status": {"const": "ok"}, "database": _STRING,
                                 "schema_revision": _NULLABLE_STRING}),
        "Error": error,
        "ErrorDocument": _obj({"errors": {"type": "array", "items": ref("Error"),
                                          "minItems": 1}}, ("errors",)),
    }


def component_schemas(max_items: int) -> dict[str, JsonSchema]:
    return {
        "Id": {"type": "string", "pattern": id_pattern(),
               "description": "Printable, no whitespace, 1 to 256 characters."},
        "Name": {"type": "string", "maxLength": MAX_NAME_LENGTH, "pattern": name_pattern(),
                 "description": "No control characters; not only whitespace."},
        "Text": {"type": "string", "pattern": TEXT_PATTERN},
        "Status": {"type": "string", "pattern": status_pattern(),
                   "description": f"One of {sorted(EXPERIMENT_STATUSES)}, in any case."},
        **_request_schemas(max_items),
        **_events_schemas(max_items),
        **_response_schemas(),
    }

"""Every API call of the client as a :class:`~._base.Call` (shared by sync and async)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ..models import Experiment
from ._base import Call, data_of, page_of
from .models import (
    Dataset,
    DatasetRecord,
    ExperimentComparison,
    ExperimentDetails,
    ExperimentSummary,
    Project,
    RecordResult,
    RecordsFromSpans,
)

#: Records sent per ``POST /datasets/{id}/records`` (the server accepts 10,000).
RECORDS_PER_REQUEST = 1000

Page = tuple[list[Any], str | None]


def _id(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty str, got {value!r}")
    return quote(value, safe="")


def _page_params(page_size: int | None, **filters: str | None) -> dict[str, str | int]:
    params: dict[str, str | int] = {f"filter[{k}]": v for k, v in filters.items() if v is not None}
    if page_size is not None:
        params["page[size]"] = page_size
    return params


def _resource(type_: str, attrs: Mapping[str, Any], id_: str | None = None) -> dict[str, Any]:
    res: dict[str, Any] = {"type": type_, "attributes": {k: v for k, v in attrs.items()
                                                         if v is not None}}
    if id_ is not None:
        res["id"] = id_
    return res


def _nothing(_doc: Any) -> None:
    return None


# -- projects ---------------------------------------------------------------------------

def create_project(name: str, description: str | None) -> Call[Project]:
    # get-or-create by name on the server: repeating it is harmless
    return Call("POST", "/projects", data_of(Project.from_resource),
                json={"data": _resource("projects", {"name": name, "description": description})},
                idempotent=True)


def list_projects(page_size: int | None) -> Call[Page]:
    return Call("GET", "/projects", page_of(Project.from_resource), _page_params(page_size),
                idempotent=True)


def retrieve_project(project_id: str) -> Call[Project]:
    return Call("GET", f"/projects/{_id(project_id, 'project_id')}",
                data_of(Project.from_resource), idempotent=True)


# -- datasets ---------------------------------------------------------------------------

def create_dataset(name: str, project_id: str | None, description: str | None,
                   metadata: Mapping[str, Any] | None) -> Call[Dataset]:
    attrs = {"name": name, "project_id": project_id, "description": description,
             "metadata": dict(metadata) if metadata is not None else None}
    return Call("POST", "/datasets", data_of(Dataset.from_resource),
                json={"data": _resource("datasets", attrs)})


def list_datasets(project_id: str | None, page_size: int | None) -> Call[Page]:
    return Call("GET", "/datasets", page_of(Dataset.from_resource),
                _page_params(page_size, project_id=project_id), idempotent=True)


def retrieve_dataset(dataset_id: str) -> Call[Dataset]:
    return Call("GET", f"/datasets/{_id(dataset_id, 'dataset_id')}",
                data_of(Dataset.from_resource), idempotent=True)


def record_resource(record: Mapping[str, Any] | DatasetRecord) -> dict[str, Any]:
    """A dataset record from a mapping (``input``, ``expected_output``, ``metadata``,
    ``tags``, optional ``id``) or a :class:`DatasetRecord`."""
    if isinstance(record, DatasetRecord):
        record = {"id": record.id, "input": record.input,
                  "expected_output": record.expected_output, "metadata": record.metadata,
                  "tags": record.tags}
    if not isinstance(record, Mapping):
        raise TypeError(f"a dataset record must be a mapping, got {type(record).__name__}")
    if "input" not in record:
        raise ValueError("a dataset record needs an 'input'")
    unknown = set(record) - {"id", "input", "expected_output", "metadata", "tags"}
    if unknown:
        raise ValueError(f"unknown dataset record field(s): {sorted(unknown)}")
    attrs = {k: record.get(k) for k in ("expected_output", "metadata", "tags")}
    attrs = {"input": record["input"], **{k: v for k, v in attrs.items() if v is not None}}
    res: dict[str, Any] = {"type": "dataset_records", "attributes": attrs}
    if record.get("id") is not None:
        res["id"] = str(record["id"])
    return res


def append_records(dataset_id: str, records: Iterable[Mapping[str, Any] | DatasetRecord]
                   ) -> list[Call[list[DatasetRecord]]]:
    """One call per :data:`RECORDS_PER_REQUEST` records."""
    resources = [record_resource(r) for r in records]
    path = f"/datasets/{_id(dataset_id, 'dataset_id')}/records"

    def parse(doc: Any) -> list[DatasetRecord]:
        data = doc["data"]
        return [DatasetRecord.from_resource(r) for r in (data if isinstance(data, list) else [data])]

    return [Call("POST", path, parse, json={"data": resources[i:i + RECORDS_PER_REQUEST]})
            for i in range(0, len(resources), RECORDS_PER_REQUEST)]


def records_from_spans(dataset_id: str, selection: Mapping[str, Any]) -> Call[RecordsFromSpans]:
    """``POST /datasets/{id}/from-spans`` (``None`` values are left out)."""
    attrs = {k: v for k, v in selection.items() if v is not None}
    return Call("POST", f"/datasets/{_id(dataset_id, 'dataset_id')}/from-spans",
                RecordsFromSpans.from_document,
                json={"data": {"type": "dataset_records_from_spans", "attributes": attrs}})


def list_records(dataset_id: str, version: int | None, page_size: int | None) -> Call[Page]:
    params = _page_params(page_size)
    if version is not None:
        params["version"] = version
    return Call("GET", f"/datasets/{_id(dataset_id, 'dataset_id')}/records",
                page_of(DatasetRecord.from_resource), params, idempotent=True)


def update_record(dataset_id: str, record_id: str, changes: Mapping[str, Any]
                  ) -> Call[DatasetRecord]:
    return Call("PATCH", f"/datasets/{_id(dataset_id, 'dataset_id')}/records/"
                f"{_id(record_id, 'record_id')}", data_of(DatasetRecord.from_resource),
                json={"data": {"type": "dataset_records", "attributes": dict(changes)}})


def delete_record(dataset_id: str, record_id: str) -> Call[None]:
    return Call("DELETE", f"/datasets/{_id(dataset_id, 'dataset_id')}/records/"
                f"{_id(record_id, 'record_id')}", _nothing)


# -- experiments ------------------------------------------------------------------------

def new_experiment_id() -> str:
    return f"exp-{uuid.uuid4().hex}"


def create_experiment(attrs: Mapping[str, Any], experiment_id: str) -> Call[ExperimentDetails]:
    # The id is chosen here, so a retried create cannot make a second experiment.
    return Call("POST", "/experiments", data_of(ExperimentDetails.from_resource),
                json={"data": _resource("experiments", attrs, experiment_id)}, idempotent=True)


def as_experiment(details: ExperimentDetails, feature_slug: str) -> Experiment:
    return Experiment(details.id, details.name, details.feature_slug or feature_slug,
                      details.created_at or "")


def where_conditions(where: Mapping[str, Any] | Iterable[str] | None) -> list[str]:
    """``{"config.model": "gpt-4o", "git.dirty": False}`` or ``["config.model=gpt-4o"]`` ->
    the ``filter[where]`` values (see ``docs/server.md``): values written as JSON would."""
    if where is None:
        return []
    if isinstance(where, str):
        raise TypeError("where must be a mapping or a list of 'PATH=VALUE' strings, not a str")
    if isinstance(where, Mapping):
        out = []
        for key, value in where.items():
            text = value if isinstance(value, str) else json.dumps(value)
            out.append(f"{key}={text}")
        return out
    return [str(item) for item in where]


def list_experiments(filters: Mapping[str, str | None], page_size: int | None,
                     where: Mapping[str, Any] | Iterable[str] | None = None) -> Call[Page]:
    params: dict[str, Any] = _page_params(page_size, **filters)
    conditions = where_conditions(where)
    if conditions:
        params["filter[where]"] = conditions
    return Call("GET", "/experiments", page_of(ExperimentDetails.from_resource),
                params, idempotent=True)


def retrieve_experiment(experiment_id: str) -> Call[ExperimentDetails]:
    return Call("GET", f"/experiments/{_id(experiment_id, 'experiment_id')}",
                data_of(ExperimentDetails.from_resource), idempotent=True)


def update_experiment(experiment_id: str, attrs: Mapping[str, Any]) -> Call[ExperimentDetails]:
    # Sets fields to given values: repeating it changes nothing more.
    return Call("PATCH", f"/experiments/{_id(experiment_id, 'experiment_id')}",
                data_of(ExperimentDetails.from_resource),
                json={"data": _resource("experiments", attrs)}, idempotent=True)


def delete_experiment(experiment_id: str) -> Call[None]:
    return Call("DELETE", f"/experiments/{_id(experiment_id, 'experiment_id')}", _nothing,
                idempotent=True)


def list_events(experiment_id: str, filters: Mapping[str, str | None],
                page_size: int | None) -> Call[Page]:
    def parse_event(res: Any) -> dict[str, Any]:
        doc = dict(res.get("attributes") or {})
        doc.setdefault("span_id", res.get("id"))
        return doc

    return Call("GET", f"/experiments/{_id(experiment_id, 'experiment_id')}/events",
                page_of(parse_event), _page_params(page_size, **filters), idempotent=True)


def list_experiment_records(experiment_id: str, filters: Mapping[str, str | None],
                            page_size: int | None) -> Call[Page]:
    return Call("GET", f"/experiments/{_id(experiment_id, 'experiment_id')}/records",
                page_of(RecordResult.from_resource), _page_params(page_size, **filters),
                idempotent=True)


def summary(experiment_id: str) -> Call[ExperimentSummary]:
    return Call("GET", f"/experiments/{_id(experiment_id, 'experiment_id')}/summary",
                data_of(ExperimentSummary.from_resource), idempotent=True)


def compare_experiments(a: str, b: str, confidence: float) -> Call[ExperimentComparison]:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) \
            or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    for value, what in ((a, "a"), (b, "b")):
        _id(value, what)  # the same check as a path id; sent as query parameters
    return Call("GET", "/experiments/compare", data_of(ExperimentComparison.from_resource),
                {"a": a, "b": b, "confidence": repr(float(confidence))}, idempotent=True)


def experiment_attrs(*, name: str | None, feature_slug: str | None, description: str | None,
                     project_id: str | None = None, dataset_id: str | None = None,
                     dataset_version: int | None = None, status: str | None = None,
                     config: Mapping[str, Any] | None = None,
                     metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "feature_slug": feature_slug, "description": description,
            "project_id": project_id, "dataset_id": dataset_id,
            "dataset_version": dataset_version, "status": status,
            "config": dict(config) if config is not None else None,
            "metadata": dict(metadata) if metadata is not None else None}


def _epoch_ns(value: int | datetime | None, what: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{what} must be timezone-aware (or epoch nanoseconds)")
        return int(value.timestamp() * 1_000_000_000)
    raise TypeError(f"{what} must be epoch nanoseconds or a datetime, got {value!r}")


def from_spans_selection(*, experiment_id: str | None, feature_slug: str | None,
                         metric: str | None, equals: bool | float | str | None,
                         minimum: float | None, maximum: float | None, span_name: str | None,
                         status: str | None, start_after: int | datetime | None,
                         start_before: int | datetime | None, roots_only: bool,
                         expected_output: str, limit: int | None) -> dict[str, Any]:
    """The ``from-spans`` request attributes; the server checks them (400 naming the field)."""
    if experiment_id is None and feature_slug is None:
        raise ValueError("give experiment_id or feature_slug")
    if metric is None and (equals is not None or minimum is not None or maximum is not None):
        raise ValueError("equals / min / max need metric=LABEL")
    return {
        "experiment_id": experiment_id, "feature_slug": feature_slug,
        "metric": None if metric is None else {k: v for k, v in (
            ("label", metric), ("equals", equals), ("min", minimum), ("max", maximum))
            if v is not None},
        "span_name": span_name, "status": status,
        "start_after_ns": _epoch_ns(start_after, "start_after"),
        "start_before_ns": _epoch_ns(start_before, "start_before"),
        "roots_only": roots_only, "expected_output": expected_output, "limit": limit,
    }

"""JSON:API documents for stored rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from .jsonapi import loads, resource
from .store import Page


def project_resource(row: dict[str, Any]) -> dict[str, Any]:
    return resource("projects", row["id"], {
        "name": row["name"], "description": row["description"],
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    })


def dataset_resource(row: dict[str, Any]) -> dict[str, Any]:
    attrs = {
        "project_id": row["project_id"], "name": row["name"], "description": row["description"],
        "metadata": loads(row["metadata"]), "current_version": row["current_version"],
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }
    if "record_count" in row:
        attrs["record_count"] = row["record_count"]
    return resource("datasets", row["id"], attrs)


def record_resource(row: dict[str, Any]) -> dict[str, Any]:
    return resource("dataset_records", row["record_id"], {
        "dataset_id": row["dataset_id"], "input": loads(row["input"]),
        "expected_output": loads(row["expected_output"]), "metadata": loads(row["metadata"]),
        "tags": loads(row["tags"]), "version": row["version_added"],
        "created_at": row["created_at"],
    })


def experiment_resource(row: dict[str, Any]) -> dict[str, Any]:
    return resource("experiments", row["id"], {
        "project_id": row["project_id"], "dataset_id": row["dataset_id"],
        "dataset_version": row["dataset_version"], "name": row["name"],
        "description": row["description"], "feature_slug": row["feature_slug"],
        "status": row["status"], "config": loads(row["config"]),
        "metadata": loads(row["metadata"]), "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    })


def list_document(request: Request, page: Page, render: Callable[[dict[str, Any]], Any],
                  size: int, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    next_link = None
    if page.next_cursor is not None:
        url = request.url
        raw = request.scope.get("raw_path")
        if isinstance(raw, bytes) and raw:  # as the client quoted it: ids may hold "/" (%2F)
            url = url.replace(path=raw.decode("latin-1"))
        next_link = str(url.include_query_params(**{"page[cursor]": page.next_cursor}))
    return {
        "data": [render(r) for r in page.rows],
        "meta": {**(meta or {}), "page": {"size": size, "next_cursor": page.next_cursor}},
        "links": {"next": next_link},
    }


EXAMPLE_SPAN = {
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
    "name": "extraction_task", "start_ns": 1704067200000000000, "duration": 5000000000,
    "status": "ok", "meta": {"input": {"q": "2+2"}, "output": "4"},
    "tags": ["experiment.name:Prompt v3", "experiment.feature_slug:math", "user.id:u-1"],
}
EXAMPLES: dict[str, dict[str, Any]] = {
    "project": {"data": {"type": "project", "attributes": {
        "name": "vote-extraction-project", "description": "Testing vote extraction accuracy"}}},
    "dataset": {"data": {"type": "dataset", "attributes": {
        "project_id": "proj-abc123", "name": "thai-elections-v1",
        "description": "20 Bangkok election forms", "metadata": {}}}},
    "records": {"data": [{"type": "dataset_record", "attributes": {
        "input": {"image_url": "s3://bucket/form-001.jpg"},
        "expected_output": {"total_votes": 1250}, "metadata": {}, "tags": ["form:bangkok"]}}]},
    "record_update": {"data": {"type": "dataset_record", "attributes": {
        "expected_output": {"total_votes": 1251}}}},
    "experiment": {"data": {"type": "experiment", "attributes": {
        "project_id": "proj-abc123", "dataset_id": "ds-xyz789", "name": "Gemini 2.0 Flash Test",
        "description": "Testing with enhanced prompt", "feature_slug": "vote-extraction",
        "config": {"model": "gemini-2.0-flash", "temperature": 0.0}, "metadata": {}}}},
    "experiment_update": {"data": {"type": "experiment", "attributes": {
        "status": "EVALUATING", "metadata": {"version": 2}}}},
    "events": {"data": {"type": "experiment_events", "attributes": {
        "spans": [EXAMPLE_SPAN],
        "metrics": [{"trace_id": EXAMPLE_SPAN["trace_id"], "span_id": EXAMPLE_SPAN["span_id"],
                     "metric_type": "score", "label": "accuracy", "score_value": 0.95,
                     "timestamp_ms": 1704067200000}]}}},
}

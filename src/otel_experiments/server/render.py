"""JSON:API documents for stored rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from .jsonapi import loads
from .store import Page


def project_resource(row: dict[str, Any]) -> dict[str, Any]:
    return {"type": "projects", "id": row["id"], "attributes": {
        "name": row["name"], "description": row["description"],
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }}


def dataset_resource(row: dict[str, Any]) -> dict[str, Any]:
    attrs = {
        "project_id": row["project_id"], "name": row["name"], "description": row["description"],
        "metadata": loads(row["metadata"]), "current_version": row["current_version"],
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }
    if "record_count" in row:
        attrs["record_count"] = row["record_count"]
    return {"type": "datasets", "id": row["id"], "attributes": attrs}


def record_resource(row: dict[str, Any]) -> dict[str, Any]:
    return {"type": "dataset_records", "id": row["record_id"], "attributes": {
        "dataset_id": row["dataset_id"], "input": loads(row["input"]),
        "expected_output": loads(row["expected_output"]), "metadata": loads(row["metadata"]),
        "tags": loads(row["tags"]), "version": row["version_added"],
        "created_at": row["created_at"],
    }}


def experiment_resource(row: dict[str, Any]) -> dict[str, Any]:
    return {"type": "experiments", "id": row["id"], "attributes": {
        "project_id": row["project_id"], "dataset_id": row["dataset_id"],
        "dataset_version": row["dataset_version"], "name": row["name"],
        "description": row["description"], "feature_slug": row["feature_slug"],
        "status": row["status"], "config": loads(row["config"]),
        "metadata": loads(row["metadata"]), "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }}


def list_document(request: Request, page: Page, render: Callable[[dict[str, Any]], Any],
                  size: int, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    next_link = None
    if page.next_cursor is not None:
        next_link = str(request.url.include_query_params(**{"page[cursor]": page.next_cursor}))
    return {
        "data": [render(r) for r in page.rows],
        "meta": {**(meta or {}), "page": {"size": size, "next_cursor": page.next_cursor}},
        "links": {"next": next_link},
    }

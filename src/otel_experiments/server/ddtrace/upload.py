"""ddtrace's bulk upload of dataset records: one CSV file in a ``multipart/form-data`` body.

``LLMObs.create_dataset_from_csv`` and ``create_dataset(bulk_upload=True)`` post the
records as a CSV with the columns ``input``, ``expected_output``, ``metadata``, ``id``,
each value JSON-encoded (``ddtrace/llmobs/_writer.py``, ``dataset_bulk_upload``). Parsed
with the standard library (no form-parsing dependency for one file).
"""

from __future__ import annotations

import csv
import io
import json
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from ..jsonapi import ApiError

_COLUMNS = ("input", "expected_output", "metadata", "id")


def _csv_file(content_type: str, body: bytes) -> str:
    """The text of the first file part of a ``multipart/form-data`` body."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(415, f"Content-Type must be multipart/form-data, got {content_type!r}")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    for part in message.iter_parts() if message.is_multipart() else []:
        if part.get_filename() is not None:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                try:
                    return payload.decode("utf-8")
                except UnicodeDecodeError:
                    raise ApiError(400, "the CSV file is not UTF-8") from None
    raise ApiError(400, "no file in the multipart body")


def _json(text: str, ptr: str) -> Any:
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise ApiError(400, "must be JSON-encoded", ptr) from None


def csv_records(content_type: str, body: bytes, max_items: int) -> list[dict[str, Any]]:
    """Insert records (as :func:`~..store.ddtrace.batch_update` takes them) from the CSV."""
    reader = csv.DictReader(io.StringIO(_csv_file(content_type, body)))
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ApiError(400, f"the CSV has no {', '.join(missing)} column")
    out: list[dict[str, Any]] = []
    for n, row in enumerate(reader, start=2):  # line 1 is the header
        if len(out) >= max_items:
            raise ApiError(413, f"more than {max_items} records in one upload")
        ptr = f"/file/line/{n}"
        record_id = row["id"]
        if not record_id or len(record_id) > 256 or not record_id.isprintable():
            raise ApiError(400, "id must be a non-empty printable id", f"{ptr}/id")
        metadata = _json(row["metadata"], f"{ptr}/metadata")
        out.append({"id": record_id, "input": _json(row["input"], f"{ptr}/input"),
                    "expected_output": _json(row["expected_output"], f"{ptr}/expected_output"),
                    "metadata": metadata if isinstance(metadata, dict) else {}, "tags": []})
    return out


__all__ = ["csv_records"]

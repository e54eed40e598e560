"""Where records come from: a list of dicts, a JSONL or CSV file, or a server dataset.

Every record gets a stable id (its ``id`` if it has one, else a hash of its content), so
a resumed run recognises the records an interrupted run already finished.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..client import ExperimentsClient
    from ..client.models import Dataset

_RESERVED = ("id", "input", "expected_output", "metadata", "tags")
_EXPECTED_ALIASES = ("expected_output", "expected", "expected_outputs")


class DatasetError(ValueError):
    """A dataset that cannot be read (missing file, bad line, unknown format)."""


def repetition_key(record_id: str, repetition: int | None) -> str:
    """Which run of a record this is, as one key (the record id itself without
    repetitions), so a resumed run with repetitions skips exactly the runs it finished."""
    return record_id if repetition is None else f"{record_id}#{repetition}"


@dataclass(frozen=True)
class Record:
    id: str
    input: Any
    expected_output: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: which run of the record (0, 1, ...) when a run repeats records, else ``None``
    repetition: int | None = None

    @property
    def key(self) -> str:
        return repetition_key(self.id, self.repetition)


@dataclass(frozen=True)
class LoadedDataset:
    records: list[Record]
    #: the server dataset's id and version (``None`` for local data)
    dataset_id: str | None = None
    dataset_version: int | None = None
    name: str | None = None
    source: str = "inline"


def _content_id(item: Mapping[str, Any]) -> str:
    text = json.dumps([item.get("input"), item.get("expected_output"), item.get("metadata")],
                      sort_keys=True, default=str, separators=(",", ":"))
    return "rec-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _from_mapping(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise DatasetError(f"{where}: a record must be an object, got {type(item).__name__}")
    out = dict(item)
    for alias in _EXPECTED_ALIASES[1:]:
        if alias in out and "expected_output" not in out:
            out["expected_output"] = out.pop(alias)
    if "input" not in out:  # a flat row: every other field is the input
        out = {"input": {k: v for k, v in out.items() if k not in _RESERVED},
               **{k: out[k] for k in _RESERVED if k in out and k != "input"}}
    metadata = out.get("metadata")
    if metadata == "":  # an empty CSV cell
        metadata = out["metadata"] = None
    if metadata is not None and not isinstance(metadata, Mapping):
        raise DatasetError(f"{where}: metadata must be an object")
    return out


def records_from(items: Iterable[Any], source: str = "inline") -> list[Record]:
    """Records from mappings; ids are kept or derived, and made unique."""
    out: list[Record] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(items):
        item = _from_mapping(raw, f"{source}: record {i + 1}")
        rid = str(item["id"]) if item.get("id") not in (None, "") else _content_id(item)
        if rid in seen:  # identical records: keep both, with distinct ids
            seen[rid] += 1
            rid = f"{rid}-{seen[rid]}"
        else:
            seen[rid] = 1
        out.append(Record(rid, item["input"], item.get("expected_output"),
                          dict(item.get("metadata") or {})))
    return out


def _json_or_text(value: str) -> Any:
    text = value.strip()
    if text[:1] in ("{", "[", '"') or text in ("true", "false", "null"):
        try:
            return json.loads(text)
        except ValueError:
            return value
    return value


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    items = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                raise DatasetError(f"{path}:{n}: not JSON ({exc})") from None
    return items


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV file with a header; cells that hold JSON are decoded."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise DatasetError(f"{path}: no header row")
        return [{k: _json_or_text(v) if isinstance(v, str) else v for k, v in row.items()}
                for row in reader]


def read_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl(p)
    if suffix == ".csv":
        return read_csv(p)
    if suffix == ".json":
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, Mapping) and isinstance(data.get("records"), list):
            data = data["records"]
        if not isinstance(data, list):
            raise DatasetError(f"{p}: expected a JSON array of records")
        return data
    raise DatasetError(f"{p}: unknown dataset format {suffix or '(none)'!r}; "
                       "use .jsonl, .csv or .json")


def load_dataset(dataset: Any, client: ExperimentsClient | None = None,
                 version: int | None = None) -> LoadedDataset:
    """Records from a list of dicts, a path, a :class:`~..client.models.Dataset` or a
    server dataset id (``ds-...``; needs ``client``)."""
    from ..client.models import Dataset

    if isinstance(dataset, Dataset):
        return _server_dataset(dataset, client, version)
    if isinstance(dataset, (str, os.PathLike)):
        path = Path(dataset)
        if path.exists() or path.suffix.lower() in (".jsonl", ".csv", ".json", ".ndjson"):
            return LoadedDataset(records_from(read_file(path), str(path)), name=path.stem,
                                 source=str(path))
        if client is None:
            raise DatasetError(f"{dataset}: no such file (and no client to look up a dataset)")
        return _server_dataset(client.datasets.retrieve(str(dataset)), client, version)
    if isinstance(dataset, (list, tuple)):
        return LoadedDataset(records_from(dataset))
    raise DatasetError("dataset must be a list of dicts, a .jsonl/.csv/.json path, a Dataset "
                       f"or a dataset id, got {type(dataset).__name__}")


def _server_dataset(ds: Dataset, client: ExperimentsClient | None,
                    version: int | None) -> LoadedDataset:
    if client is None:
        raise DatasetError("reading a server dataset needs a client")
    v = ds.current_version if version is None else version
    items = [{"id": r.id, "input": r.input, "expected_output": r.expected_output,
              "metadata": r.metadata} for r in client.datasets.records.list(ds.id, version=v)]
    return LoadedDataset(records_from(items, ds.id), ds.id, v, ds.name, f"dataset {ds.id}")


__all__ = ["DatasetError", "LoadedDataset", "Record", "load_dataset", "read_file",
           "records_from"]

"""The writes ddtrace's experiments client needs that our own API does not have.

Functions over any :class:`~.base.StoreBase` (as :mod:`.records`), on the same tables:
what ddtrace creates is listed by our API like anything else.

* datasets are got-or-created by (project, name): ddtrace's ``create_dataset`` is called
  again on every run of the same script, and must land on the same dataset;
* ``batch_update`` applies inserts, updates and deletes as one dataset version;
  ``deduplicate`` skips an insert whose input and expected output a live record already
  has (or whose id it already has: a retried request), answering with that record's id as
  the ``canonical_id``, so spans of a rerun still name the stored record;
* a span naming a record id the dataset does not have (ddtrace's own id for a record the
  upload deduplicated) is matched to the live record with the same input and expected
  output (:func:`stored_record_ids`);
* an experiment's summary metrics go where our runner keeps its summary evaluators'
  values (``metadata.summary.evaluations``), the metrics as sent under
  ``metadata._dd.summary_metrics``; ddtrace's experiment-level extras (``error``,
  ``run_count``, ``parent_experiment_id``) under ``metadata._dd``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from ...events.dialects import metric_value
from ..jsonapi import ApiError, dumps_str, loads
from ..schema import dataset_records, datasets, experiments
from .base import Page, StoreBase, encode_cursor, new_id, now_iso

#: Key under an experiment's (or metric's) metadata for what only ddtrace sends.
DD_KEY = "_dd"


def _canonical(value: Any) -> str:
    """Order-independent JSON text: two records with equal content compare equal."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def get_or_create_dataset(store: StoreBase, project_id: str, name: str,
                          description: str) -> tuple[dict[str, Any], bool]:
    """The project's dataset called ``name`` (the oldest, if several), else a new one."""
    d = datasets.c

    def work() -> tuple[dict[str, Any], bool]:
        with store._write() as conn:
            row = conn.execute(sa.select(datasets).where(d.project_id == project_id, d.name == name)
                               .order_by(d.seq).limit(1)).first()
            if row is not None:
                return dict(row._mapping), False
            now = now_iso()
            created = conn.execute(datasets.insert().values(
                id=new_id("ds"), project_id=project_id, name=name, description=description,
                metadata="{}", current_version=0, created_at=now, updated_at=now,
            ).returning(*datasets.c)).one()
            return dict(created._mapping), True

    result: tuple[dict[str, Any], bool] = store._retrying(work)
    return result


def find_datasets(store: StoreBase, project_id: str, name: str | None) -> list[dict[str, Any]]:
    d = datasets.c
    query = sa.select(datasets).where(d.project_id == project_id)
    if name is not None:
        query = query.where(d.name == name)
    with store._read() as conn:
        return [dict(r._mapping) for r in conn.execute(query.order_by(d.seq))]


def _tag_ops(tags: list[str], ops: Mapping[str, Any]) -> list[str]:
    if isinstance(ops.get("set"), list):
        tags = [t for t in ops["set"] if isinstance(t, str)]
    remove = {t for t in ops.get("remove") or [] if isinstance(t, str)}
    tags = [t for t in tags if t not in remove]
    tags += [t for t in ops.get("add") or [] if isinstance(t, str) and t not in tags]
    return tags


def batch_update(store: StoreBase, dataset_id: str, inserts: list[dict[str, Any]],
                 updates: list[dict[str, Any]], deletes: list[str], *, deduplicate: bool,
                 new_version: bool) -> list[dict[str, Any]]:
    """Apply one ``batch_update``; returns one item per insert and update:
    ``{"id", "record_id", "version"}`` (``id`` as the client named it, ``record_id`` the
    stored record it is). Every change lands in one version: a new one when
    ``new_version`` (or the dataset has none yet), else the current one."""
    r = dataset_records.c

    def work() -> list[dict[str, Any]]:
        now = now_iso()
        with store._write() as conn:
            ds = store._require(conn, datasets, dataset_id, "dataset")
            live = {row.record_id: row for row in conn.execute(
                sa.select(dataset_records).where(r.dataset_id == dataset_id,
                                                 r.version_removed.is_(None)))}
            content = {(_canonical(loads(row.input)), _canonical(loads(row.expected_output))):
                       rid for rid, row in live.items()}
            version = int(ds["current_version"])
            bumped = False

            def target() -> int:
                nonlocal version, bumped
                if not bumped and (new_version or version == 0):
                    version, bumped = version + 1, True
                    conn.execute(datasets.update().where(datasets.c.id == dataset_id)
                                 .values(current_version=version, updated_at=now))
                return version

            def retire(record_id: str) -> sa.Row[Any] | None:
                old = live.pop(record_id, None)
                if old is not None:
                    conn.execute(dataset_records.update().where(r.seq == old.seq)
                                 .values(version_removed=target()))
                return old

            out: list[dict[str, Any]] = []
            for rec in inserts:
                key = (_canonical(rec["input"]), _canonical(rec["expected_output"]))
                found = rec["id"] if rec["id"] in live else (
                    content.get(key) if deduplicate else None)
                if found is not None:
                    out.append({"id": rec["id"], "record_id": found, "version": version})
                    continue
                v = target()
                row = conn.execute(dataset_records.insert().values(
                    dataset_id=dataset_id, record_id=rec["id"], version_added=v,
                    version_removed=None, input=dumps_str(rec["input"]),
                    expected_output=dumps_str(rec["expected_output"]),
                    metadata=dumps_str(rec["metadata"]), tags=dumps_str(rec["tags"]),
                    created_at=now).returning(*dataset_records.c)).one()
                live[rec["id"]] = row
                content.setdefault(key, rec["id"])
                out.append({"id": rec["id"], "record_id": rec["id"], "version": v})
            for upd in updates:
                old = retire(upd["id"])
                if old is None:
                    raise ApiError(404, f"record {upd['id']!r} not found in dataset "
                                   f"{dataset_id!r}")
                values = {k: v for k, v in old._mapping.items() if k != "seq"}
                for column in ("input", "expected_output", "metadata"):
                    if column in upd:
                        values[column] = dumps_str(upd[column])
                if "tag_operations" in upd:
                    values["tags"] = dumps_str(_tag_ops(loads(old.tags), upd["tag_operations"]))
                values.update(version_added=version, version_removed=None, created_at=now)
                live[upd["id"]] = conn.execute(dataset_records.insert().values(**values)
                                               .returning(*dataset_records.c)).one()
                out.append({"id": upd["id"], "record_id": upd["id"], "version": version})
            for record_id in deletes:
                retire(record_id)  # deleting what is not there is already done
            return out

    result: list[dict[str, Any]] = store._retrying(work)
    return result


def stored_record_ids(store: StoreBase, dataset_id: str,
                      records: Mapping[str, tuple[Any, Any]]) -> dict[str, str]:
    """``{record id a span names: the live record it is}`` for ``records`` (record id ->
    (input, expected output) the span ran): the id itself when the dataset has it, else
    the live record with the same content (a deduplicated upload: ddtrace does not learn
    the stored id and names its own), else nothing."""
    r = dataset_records.c
    with store._read() as conn:
        known = set(conn.execute(sa.select(r.record_id).where(
            r.dataset_id == dataset_id, r.version_removed.is_(None),
            r.record_id.in_(list(records)))).scalars())
        out = {rid: rid for rid in known}
        if len(known) == len(records):
            return out
        by_content: dict[tuple[str, str], str] = {}
        for rid, inp, expected in conn.execute(
                sa.select(r.record_id, r.input, r.expected_output)
                .where(r.dataset_id == dataset_id, r.version_removed.is_(None))
                .order_by(r.seq)):
            by_content.setdefault((_canonical(loads(inp)), _canonical(loads(expected))), rid)
    for rid, (inp, expected) in records.items():
        if rid not in out:
            found = by_content.get((_canonical(inp), _canonical(expected)))
            if found is not None:
                out[rid] = found
    return out


def newest_experiments(store: StoreBase, filters: Mapping[str, str], size: int, before: int,
                       keep: Callable[[dict[str, Any]], bool] | None = None) -> Page:
    """Experiments newest first (ddtrace's ``list_experiments`` order), equal to ``filters``
    (column -> value) and passing ``keep`` (for what only the metadata holds); ``before``
    is the cursor (a ``seq``; 0: from the newest)."""
    e = experiments.c
    query = sa.select(experiments).where(*(e[k] == v for k, v in filters.items()))
    found: list[dict[str, Any]] = []
    more = True
    with store._read() as conn:
        while len(found) <= size and more:
            q = query if not before else query.where(e.seq < before)
            rows = conn.execute(q.order_by(e.seq.desc()).limit(max(size, 100))).all()
            more = bool(rows)
            for row in rows:
                before = row.seq
                item = dict(row._mapping)
                if keep is None or keep(item):
                    found.append(item)
                    if len(found) > size:
                        break
    page = found[:size]
    return Page(page, encode_cursor(page[-1]["seq"]) if len(found) > size else None)


def contains(value: Any, wanted: Any) -> bool:
    """JSON containment (PostgreSQL's ``@>``): every member / item of ``wanted`` is in
    ``value``, recursively."""
    if isinstance(wanted, dict):
        return isinstance(value, dict) and all(
            k in value and contains(value[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(value, list) and all(
            any(contains(item, w) for item in value) for w in wanted)
    return bool(value == wanted)


def merge_experiment(store: StoreBase, experiment_id: str, *, status: str | None = None,
                     dd: Mapping[str, Any] | None = None,
                     summary_metrics: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Set the status and merge ddtrace's extras / summary metrics into the metadata
    (read and written in one transaction, the row locked on PostgreSQL)."""
    e = experiments.c

    def work() -> dict[str, Any]:
        with store._write() as conn:
            row = conn.execute(sa.select(experiments).where(e.id == experiment_id)
                               .with_for_update()).first()
            if row is None:
                raise ApiError(404, f"experiment {experiment_id!r} not found")
            metadata = loads(row.metadata)
            metadata = metadata if isinstance(metadata, dict) else {}
            extras = metadata.get(DD_KEY)
            extras = dict(extras) if isinstance(extras, dict) else {}
            extras.update(dd or {})
            if summary_metrics:
                summary = metadata.get("summary")
                summary = dict(summary) if isinstance(summary, dict) else {}
                evaluations = summary.get("evaluations")
                evaluations = dict(evaluations) if isinstance(evaluations, dict) else {}
                kept = {m["label"]: m for m in extras.get("summary_metrics") or []
                        if isinstance(m, dict)}
                for metric in summary_metrics:  # a later value for a label replaces it
                    kept[metric["label"]] = metric
                    evaluations[metric["label"]] = metric_value(metric)
                summary["evaluations"] = evaluations
                metadata["summary"] = summary
                extras["summary_metrics"] = list(kept.values())
            if extras:
                metadata[DD_KEY] = extras
            values: dict[str, Any] = {"metadata": dumps_str(metadata), "updated_at": now_iso()}
            if status is not None:
                values["status"] = status
            updated = conn.execute(experiments.update().where(e.id == experiment_id)
                                   .values(**values).returning(*experiments.c)).one()
            return dict(updated._mapping)

    result: dict[str, Any] = store._retrying(work)
    return result


__all__ = ["DD_KEY", "batch_update", "find_datasets", "get_or_create_dataset",
           "merge_experiment", "newest_experiments", "stored_record_ids"]

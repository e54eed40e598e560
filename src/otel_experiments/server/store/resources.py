"""Projects, datasets with versioned records, and experiments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ..jsonapi import ApiError, dumps_str, loads
from ..schema import dataset_records, datasets, experiments, projects
from ..where import Condition, matches_all, text_hint
from .base import Page, StoreBase, new_id, now_iso

#: Experiments read per query while matching run-metadata conditions.
_SCAN_BATCH = 500


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

EXPERIMENT_STATUSES = frozenset(
    {"PENDING", "RUNNING", "EVALUATING", "COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED"}
)


class ResourceQueries(StoreBase):
    # -- projects ---------------------------------------------------------------------------

    def create_project(self, name: str, description: str) -> tuple[dict[str, Any], bool]:
        """Get-or-create by name (project names are unique); returns (row, created)."""
        now = now_iso()
        with self._write() as conn:
            inserted = conn.execute(
                self._insert(projects)
                .values(id=new_id("proj"), name=name, description=description,
                        created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(*projects.c)
            ).first()
            if inserted is not None:
                return dict(inserted._mapping), True
            row = conn.execute(sa.select(projects).where(projects.c.name == name)).one()
            return dict(row._mapping), False

    def list_projects(self, size: int, cursor: int) -> Page:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(projects).where(projects.c.seq > cursor)
                .order_by(projects.c.seq).limit(size + 1)
            ).all()
        return self._page(rows, size)

    def get_project(self, project_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(sa.select(projects).where(projects.c.id == project_id)).first()
        return None if row is None else dict(row._mapping)

    # -- datasets ---------------------------------------------------------------------------

    def create_dataset(self, project_id: str | None, name: str, description: str,
                       metadata: dict[str, Any]) -> dict[str, Any]:
        now = now_iso()
        with self._write() as conn:
            if project_id is not None:
                self._require(conn, projects, project_id, "project", "/data/attributes/project_id")
            row = conn.execute(
                datasets.insert().values(
                    id=new_id("ds"), project_id=project_id, name=name, description=description,
                    metadata=dumps_str(metadata), current_version=0, created_at=now,
                    updated_at=now,
                ).returning(*datasets.c)
            ).one()
        return dict(row._mapping)

    def list_datasets(self, project_id: str | None, size: int, cursor: int) -> Page:
        query = sa.select(datasets).where(datasets.c.seq > cursor)
        if project_id is not None:
            query = query.where(datasets.c.project_id == project_id)
        with self._read() as conn:
            rows = conn.execute(query.order_by(datasets.c.seq).limit(size + 1)).all()
        return self._page(rows, size)

    def get_dataset(self, dataset_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.id == dataset_id)).first()
            if row is None:
                return None
            out = dict(row._mapping)
            out["record_count"] = conn.execute(
                sa.select(sa.func.count()).select_from(dataset_records).where(
                    dataset_records.c.dataset_id == dataset_id,
                    dataset_records.c.version_removed.is_(None),
                )
            ).scalar_one()
        return out

    @staticmethod
    def _live(dataset_id: str, version: int | None = None) -> sa.ColumnElement[bool]:
        r = dataset_records.c
        if version is None:
            return sa.and_(r.dataset_id == dataset_id, r.version_removed.is_(None))
        return sa.and_(
            r.dataset_id == dataset_id,
            r.version_added <= version,
            sa.or_(r.version_removed.is_(None), r.version_removed > version),
        )

    def _bump_version(self, conn: sa.Connection, dataset_id: str) -> int:
        version = conn.execute(
            datasets.update().where(datasets.c.id == dataset_id)
            .values(current_version=datasets.c.current_version + 1, updated_at=now_iso())
            .returning(datasets.c.current_version)
        ).scalar()
        if version is None:
            raise ApiError(404, f"dataset {dataset_id!r} not found")
        return int(version)

    def add_records(self, dataset_id: str, records: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        """Insert records as a new dataset version; ``records`` hold JSON-ready values."""
        now = now_iso()
        with self._write() as conn:
            version = self._bump_version(conn, dataset_id)
            ids = [r["record_id"] for r in records]
            existing = set(conn.execute(
                sa.select(dataset_records.c.record_id).where(
                    self._live(dataset_id), dataset_records.c.record_id.in_(ids)
                )
            ).scalars())
            for i, rid in enumerate(ids):
                if rid in existing or rid in ids[:i]:
                    raise ApiError(409, f"record {rid!r} already exists in the dataset",
                                   f"/data/{i}/id")
            rows = [
                {
                    "dataset_id": dataset_id, "record_id": r["record_id"], "version_added": version,
                    "version_removed": None, "input": dumps_str(r["input"]),
                    "expected_output": dumps_str(r["expected_output"]),
                    "metadata": dumps_str(r["metadata"]), "tags": dumps_str(r["tags"]),
                    "created_at": now,
                }
                for r in records
            ]
            conn.execute(dataset_records.insert(), rows)
        return version, rows

    def list_records(self, dataset_id: str, version: int | None, size: int,
                     cursor: int) -> tuple[int, Page]:
        with self._read() as conn:
            ds = self._require(conn, datasets, dataset_id, "dataset")
            current = int(ds["current_version"])
            if version is not None and version > current:
                raise ApiError(404, f"dataset {dataset_id!r} has no version {version}",
                               parameter="version")
            v = current if version is None else version
            rows = conn.execute(
                sa.select(dataset_records)
                .where(self._live(dataset_id, v), dataset_records.c.seq > cursor)
                .order_by(dataset_records.c.seq).limit(size + 1)
            ).all()
        return v, self._page(rows, size)

    def _retire_record(self, conn: sa.Connection, dataset_id: str,
                       record_id: str) -> tuple[int, sa.Row[Any]]:
        """Remove the live ``record_id`` in a new dataset version: ``(version, old row)``."""
        self._require(conn, datasets, dataset_id, "dataset")
        old = conn.execute(
            sa.select(dataset_records).where(
                self._live(dataset_id), dataset_records.c.record_id == record_id)
        ).first()
        if old is None:
            raise ApiError(404, f"record {record_id!r} not found in dataset {dataset_id!r}")
        version = self._bump_version(conn, dataset_id)
        conn.execute(dataset_records.update()
                     .where(dataset_records.c.seq == old.seq).values(version_removed=version))
        return version, old

    def update_record(self, dataset_id: str, record_id: str,
                      changes: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._write() as conn:
            version, old = self._retire_record(conn, dataset_id, record_id)
            row = {k: v for k, v in old._mapping.items() if k != "seq"}
            row.update({k: dumps_str(v) for k, v in changes.items()})
            row.update(version_added=version, version_removed=None, created_at=now_iso())
            conn.execute(dataset_records.insert().values(**row))
        return version, row

    def delete_record(self, dataset_id: str, record_id: str) -> int:
        with self._write() as conn:
            version, _ = self._retire_record(conn, dataset_id, record_id)
        return version

    # -- experiments ------------------------------------------------------------------------

    def create_experiment(self, values: dict[str, Any]) -> dict[str, Any]:
        now = now_iso()
        with self._write() as conn:
            if values.get("project_id") is not None:
                self._require(conn, projects, values["project_id"], "project",
                              "/data/attributes/project_id")
            if values.get("dataset_id") is not None:
                ds = self._require(conn, datasets, values["dataset_id"], "dataset",
                                   "/data/attributes/dataset_id")
                if values.get("dataset_version") is None:
                    values["dataset_version"] = ds["current_version"]
            values = {**values, "config": dumps_str(values["config"]),
                      "metadata": dumps_str(values["metadata"])}
            row = conn.execute(
                self._insert(experiments)
                .values(**values, created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(*experiments.c)
            ).first()
            if row is None:
                raise ApiError(409, f"experiment {values['id']!r} already exists", "/data/id")
        return dict(row._mapping)

    def list_experiments(self, filters: dict[str, str], size: int, cursor: int,
                         where: Sequence[Condition] = ()) -> Page:
        e = experiments.c
        query = sa.select(experiments)
        for key, value in filters.items():
            query = query.where(e[key] == value)
        with self._read() as conn:
            if not where:
                rows = conn.execute(query.where(e.seq > cursor).order_by(e.seq)
                                    .limit(size + 1)).all()
                return self._page(rows, size)
            # config / metadata conditions are checked on the decoded JSON (same code on
            # every database), on the rows whose JSON text contains the values at all
            # (a LIKE both databases run); scanned in batches until the page (plus one) is full.
            for hint in filter(None, map(text_hint, where)):
                column, value = hint
                query = query.where(e[column].like(f"%{_like_escape(value)}%", escape="\\"))
            found: list[sa.Row[Any, Any, Any]] = []
            after = cursor
            while len(found) <= size:
                batch = conn.execute(query.where(e.seq > after).order_by(e.seq)
                                     .limit(_SCAN_BATCH)).all()
                for row in batch:
                    if matches_all(where, loads(row.config), loads(row.metadata)):
                        found.append(row)
                        if len(found) > size:
                            break
                if len(batch) < _SCAN_BATCH:
                    break
                after = batch[-1].seq
        return self._page(found, size)

    def get_experiment(self, experiment_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(experiments).where(experiments.c.id == experiment_id)).first()
        return None if row is None else dict(row._mapping)

    def update_experiment(self, experiment_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        values = {k: dumps_str(v) if k in ("config", "metadata") else v for k, v in changes.items()}
        with self._write() as conn:
            row = conn.execute(
                experiments.update().where(experiments.c.id == experiment_id)
                .values(**values, updated_at=now_iso()).returning(*experiments.c)
            ).first()
        if row is None:
            raise ApiError(404, f"experiment {experiment_id!r} not found")
        return dict(row._mapping)

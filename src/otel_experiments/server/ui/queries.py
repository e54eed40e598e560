"""Read-only queries the pages need beyond the JSON:API ones: sorted/searched experiment
lists with their span counts and headline metrics, histogram buckets, one trace.

Counts, headline values and distributions come from the aggregates kept at ingest
(``store.aggregates``), so a page costs a few small reads whatever the number of spans;
only the rows shown are ever loaded into Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ... import attributes as attr
from .. import sketch
from ..jsonapi import loads
from ..schema import (
    datasets,
    experiments,
    metric_totals,
    metric_values,
    projects,
    span_totals,
    spans,
)
from ..store import Store, aggregates
from ..store.events import metric_docs
from ..store.records import _metric_value as metric_value
from ..where import Condition, matches_all

#: Columns the experiments list sorts by (query value -> column).
SORTS: dict[str, sa.ColumnElement[Any]] = {
    "created": experiments.c.seq,
    "name": experiments.c.name,
    "status": experiments.c.status,
    "feature": experiments.c.feature_slug,
    "updated": experiments.c.updated_at,
}


@dataclass(frozen=True)
class ExperimentFilters:
    project_id: str | None = None
    feature_slug: str | None = None
    status: str | None = None
    search: str | None = None
    #: run-metadata conditions (``config.model=gpt-4o``), checked on the decoded JSON
    where: tuple[Condition, ...] = ()


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_experiments(store: Store, filters: ExperimentFilters, sort: str, descending: bool,
                     limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """One page of experiments (plus the total matching) with names of project/dataset."""
    e = experiments.c
    where: list[sa.ColumnElement[bool]] = []
    for column, value in (("project_id", filters.project_id),
                          ("feature_slug", filters.feature_slug), ("status", filters.status)):
        if value:
            where.append(e[column] == value)
    if filters.search:
        # Case-insensitive substring search; LIKE wildcards in the text are literal.
        where.append(sa.func.lower(e.name).like(
            f"%{_like_escape(filters.search.lower())}%", escape="\\"))
    order = SORTS.get(sort, e.seq)
    order_by = [order.desc() if descending else order.asc(), e.seq.desc()]
    query = (sa.select(experiments, projects.c.name.label("project_name"),
                       datasets.c.name.label("dataset_name"))
             .select_from(experiments
                          .outerjoin(projects, projects.c.id == e.project_id)
                          .outerjoin(datasets, datasets.c.id == e.dataset_id))
             .where(*where).order_by(*order_by))
    if filters.where:  # JSON conditions: match every candidate in Python, then slice
        with store._read() as conn:
            found = [dict(r._mapping) for r in conn.execute(query)
                     if matches_all(filters.where, loads(r.config), loads(r.metadata))]
        return found[offset:offset + limit], len(found)
    query = query.limit(limit).offset(offset)
    with store._read() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(experiments)
                             .where(*where)).scalar_one()
        rows = [dict(r._mapping) for r in conn.execute(query)]
    return rows, int(total)


def experiment_stats(store: Store, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Span / error counts and per-metric headline values for each experiment in ``ids``,
    from the aggregates kept at ingest (a few rows per experiment, whatever its size)."""
    out: dict[str, dict[str, Any]] = {i: {"span_count": 0, "error_count": 0, "metrics": []}
                                      for i in ids}
    if not ids:
        return out
    t, m, v = span_totals.c, metric_totals.c, metric_values.c
    with store._read() as conn:
        for exp_id, count, errors in conn.execute(
            sa.select(t.experiment_id, t.span_count, t.error_count)
            .where(t.experiment_id.in_(ids), t.scope == 0)
        ):
            out[exp_id].update(span_count=int(count), error_count=int(errors))
        trues: dict[tuple[str, str], int] = {
            (exp_id, label): int(n) for exp_id, label, n in conn.execute(
                sa.select(v.experiment_id, v.label, v.n).where(
                    v.experiment_id.in_(ids), v.metric_type == attr.METRIC_TYPE_BOOLEAN,
                    v.value == "true"))}
        for exp_id, label, mtype, count, n_scores, total in conn.execute(
            sa.select(m.experiment_id, m.label, m.metric_type, m.metric_count, m.score_count,
                      m.score_sum)
            .where(m.experiment_id.in_(ids))
            .order_by(m.experiment_id, m.label, m.metric_type)
        ):
            boolean = mtype == attr.METRIC_TYPE_BOOLEAN
            out[exp_id]["metrics"].append(headline(
                label, mtype, int(count), total / n_scores if n_scores else None,
                trues.get((exp_id, label), 0) if boolean else 0,
                int(count) if boolean else 0))
    return out


def headline(label: str, mtype: str, count: int, mean: float | None, trues: int,
             bools: int) -> dict[str, Any]:
    """One number per metric: a score's mean, a boolean's pass rate; categoricals count."""
    if mtype == attr.METRIC_TYPE_SCORE:
        value = None if mean is None else float(mean)
        kind = "mean"
    elif mtype == attr.METRIC_TYPE_BOOLEAN:
        value = trues / bools if bools else None
        kind = "pass rate"
    else:
        value, kind = None, "values"
    return {"label": label, "metric_type": mtype, "count": count, "value": value, "kind": kind}


def filter_choices(store: Store) -> dict[str, list[Any]]:
    """Projects and feature slugs that experiments use, for the list's filter menus."""
    e = experiments.c
    with store._read() as conn:
        project_rows = conn.execute(
            sa.select(projects.c.id, projects.c.name).order_by(projects.c.name)).all()
        slugs = conn.execute(
            sa.select(e.feature_slug).where(e.feature_slug.is_not(None)).distinct()
            .order_by(e.feature_slug)).scalars().all()
    return {"projects": [(r.id, r.name) for r in project_rows], "feature_slugs": list(slugs)}


def names_of(store: Store, project_id: str | None, dataset_id: str | None) -> dict[str, Any]:
    with store._read() as conn:
        project = None if project_id is None else conn.execute(
            sa.select(projects.c.name).where(projects.c.id == project_id)).scalar()
        dataset = None if dataset_id is None else conn.execute(
            sa.select(datasets.c.name).where(datasets.c.id == dataset_id)).scalar()
    return {"project_name": project, "dataset_name": dataset}


def score_histogram(store: Store, experiment_id: str, label: str, lo: float, hi: float,
                    bins: int) -> list[int]:
    """A score metric's distribution in ``bins`` equal-width bins over [lo, hi], re-binned
    from its log buckets (``server.sketch``): no read of the metrics themselves."""
    with store._read() as conn:
        return sketch.histogram(aggregates.score_buckets(conn, experiment_id, label),
                                lo, hi, bins)


def latency_histogram(store: Store, experiment_id: str, lo: float, hi: float,
                      bins: int) -> list[int]:
    """The units' latency distribution, re-binned from their duration buckets."""
    with store._read() as conn:
        return sketch.histogram(aggregates.duration_buckets(conn, experiment_id), lo, hi, bins)


def trace_spans(store: Store, experiment_id: str, trace_id: str,
                limit: int) -> list[dict[str, Any]]:
    """The spans of one trace in this experiment (oldest first), each with its metrics."""
    s = spans.c
    with store._read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            sa.select(s.span_id, s.parent_id, s.name, s.start_ns, s.duration, s.status, s.doc)
            .where(s.experiment_id == experiment_id, s.trace_id == trace_id)
            .order_by(s.start_ns, s.seq).limit(limit))]
        # (metric_docs rebuilds the metrics stored without doc: revision 0006)
        by_span = metric_docs(conn, experiment_id, [r["span_id"] for r in rows])
        for metric in (x for ms in by_span.values() for x in ms):
            metric["value"] = metric_value(metric)  # as the records table shows it
    for row in rows:
        row["doc"] = loads(row["doc"])
        row["metrics"] = by_span.get(row["span_id"], [])
    return rows

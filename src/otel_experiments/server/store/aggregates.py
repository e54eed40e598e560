"""The summary's aggregates, kept at ingest: what one request adds, and the summary read back.

Ingest adds the rows it newly stored (never a duplicate) to small per-experiment tables
(schema revisions 0008 / 0009): span counts / errors / duration sum, min, max for every
span and for the units; per metric count, score sum / min / max and value counts; GenAI
usage by model; log-bucket histograms (``server.sketch``) for duration and score
percentiles. Each request's additions are summed in Python first, then written as additive
upserts (``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n``): correct with any
number of concurrent writers (each upsert locks its row; rows are written in key order so
writers never deadlock), on SQLite and PostgreSQL. The summary is then a handful of reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import chain, compress, repeat
from operator import is_not, itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ... import attributes as attr
from .. import sketch
from ..schema import metric_totals, metric_values, span_totals, usage_totals, value_buckets
from ..usage import add_usage, usage_document
from .columns import (
    BOOLEAN_AT,
    CATEGORY_AT,
    DURATION_AT,
    IS_ROOT_AT,
    LABEL_AT,
    METRIC_TYPE_AT,
    SCORE_AT,
    STATUS_AT,
    USAGE_AT,
)
from .pg_arrays import UnnestColumns

#: ``value_buckets.series``: durations of every span, of the units, a score metric's values.
SERIES_SPANS, SERIES_ROOTS, SERIES_SCORE = 0, 1, 2
_DURATION_OF, _STATUS_OF = itemgetter(DURATION_AT), itemgetter(STATUS_AT)
_IS_ROOT_OF, _USAGE_OF = itemgetter(IS_ROOT_AT), itemgetter(USAGE_AT)
_INPUT_TOKENS_OF = itemgetter(USAGE_AT.start)
_OUTPUT_TOKENS_OF = itemgetter(USAGE_AT.start + 1)
_METRIC_KEY_OF = itemgetter(LABEL_AT, METRIC_TYPE_AT)
_SCORE_OF, _CATEGORY_OF = itemgetter(SCORE_AT), itemgetter(CATEGORY_AT)
_BOOLEAN_OF = itemgetter(BOOLEAN_AT)
_ERROR = "error"

AGGREGATE_TABLES = (span_totals, metric_totals, metric_values, value_buckets, usage_totals)
_TABLES = {t.name: t for t in AGGREGATE_TABLES}
_PG = postgresql.dialect()  # type: ignore[no-untyped-call]  # (untyped in SQLAlchemy)

#: Per aggregate table: its key columns, the columns an upsert adds to, and the columns it
#: keeps the smaller ('min') or larger ('max') of.
_UPSERTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "span_totals": (("experiment_id", "scope"), ("span_count", "error_count", "duration_sum"),
                    (("duration_min", "min"), ("duration_max", "max"))),
    "value_buckets": (("experiment_id", "series", "label", "bucket"), ("n",), ()),
    "metric_totals": (("experiment_id", "label", "metric_type"),
                      ("metric_count", "score_count", "score_sum"),
                      (("score_min", "min"), ("score_max", "max"))),
    "metric_values": (("experiment_id", "label", "metric_type", "value"), ("n",), ()),
    "usage_totals": (("experiment_id", "model"), ("input_tokens", "output_tokens", "spans"),
                     ()),
}


def _columns(table: str) -> tuple[str, ...]:
    keys, adds, extremes = _UPSERTS[table]
    return (*keys, *adds, *(c for c, _ in extremes))


#: PostgreSQL: each table's upserted columns as ``unnest`` arrays.
_PG_UNNEST = {t: UnnestColumns(_TABLES[t], _columns(t), _PG) for t in _UPSERTS}


def _upsert(table: str, sqlite: bool) -> str:
    """The additive upsert of ``table``: ``adds`` summed, ``extremes`` (column, 'min' or
    'max') kept as the smaller / larger (NULL-safe: a NULL side keeps the other).

    SQLite: ``VALUES`` of ``{rows}`` rows (the caller picks the count: see
    :func:`_execute`). PostgreSQL: every row in one statement, one array per column through
    ``unnest`` (one plan, one round trip, where ``executemany`` would run a statement per
    row). The rows' keys are distinct (summed per request first), as ``ON CONFLICT DO
    UPDATE`` requires within one statement."""
    keys, adds, extremes = _UPSERTS[table]
    source = "VALUES {rows}" if sqlite else f"SELECT * FROM unnest({_PG_UNNEST[table].sql})"
    sets = [f"{c} = {table}.{c} + excluded.{c}" for c in adds]
    for column, kind in extremes:
        fn = kind if sqlite else ("LEAST" if kind == "min" else "GREATEST")
        # (PostgreSQL's LEAST / GREATEST skip NULLs; SQLite's min / max return NULL)
        pick = (f"coalesce({fn}({table}.{column}, excluded.{column}), {table}.{column}, "
                f"excluded.{column})")
        sets.append(f"{column} = {pick}")
    return (f"INSERT INTO {table} ({', '.join(_columns(table))}) {source} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(sets)}")


_SQL = {sqlite: {t: _upsert(t, sqlite) for t in _UPSERTS} for sqlite in (True, False)}


#: Groups past this many: one pass that appends each row to its group (else one C-level
#: pass per group: a run's metrics repeat a few labels).
_FEW_GROUPS = 8


def _metric_groups(metrics: list[tuple[Any, ...]]
                   ) -> list[tuple[tuple[str, str], list[tuple[Any, ...]]]]:
    """The metric rows by (label, type), in key order."""
    keys = list(map(_METRIC_KEY_OF, metrics))
    distinct = set(keys)
    if len(distinct) <= _FEW_GROUPS:
        return [(key, list(compress(metrics, map(key.__eq__, keys))))
                for key in sorted(distinct)]
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for key, row in zip(keys, metrics, strict=True):
        groups.setdefault(key, []).append(row)
    return sorted(groups.items())


def add_rows(cursor: Any, sqlite: bool, experiment_id: str,
             span_rows: Iterable[tuple[Any, ...]], metric_rows: Iterable[tuple[Any, ...]]) -> None:
    """Add newly stored span rows and metric rows of one experiment to its aggregates, in
    the transaction of ``cursor`` (the driver's: SQLAlchemy's statement handling cost more
    than these small statements themselves, several per request, on every request)."""
    params: dict[str, list[tuple[Any, ...]]] = {}
    spans = list(span_rows)
    if spans:
        # (a hot path at ingest: every pass over the rows goes through C-level builtins)
        durations = list(map(_DURATION_OF, spans))
        roots = list(compress(spans, map(_IS_ROOT_OF, spans)))
        by_scope = [(0, spans, durations)]
        if roots:
            by_scope.append((1, roots, list(map(_DURATION_OF, roots))))
        span_sums: list[tuple[Any, ...]] = []
        span_buckets: list[tuple[Any, ...]] = []
        for scope, members, durs in by_scope:
            errors = sum(map(_ERROR.__eq__, map(_STATUS_OF, members)))
            span_sums.append((experiment_id, scope, len(durs), errors, float(sum(durs)),
                              min(durs), max(durs)))
            span_buckets += [(experiment_id, scope, "", key, n)
                             for key, n in sorted(sketch.count_buckets(durs).items())]
        params["span_totals"] = span_sums
        params["value_buckets"] = span_buckets
        if any(map(is_not, chain(map(_INPUT_TOKENS_OF, spans), map(_OUTPUT_TOKENS_OF, spans)),
                   repeat(None))):  # (most spans carry no GenAI usage)
            usage: dict[str, list[int]] = {}
            add_usage(usage, map(_USAGE_OF, spans))
            if usage:
                params["usage_totals"] = [(experiment_id, m, *t)
                                          for m, t in sorted(usage.items())]
    metrics = list(metric_rows)
    if metrics:
        m_totals: list[tuple[Any, ...]] = []
        values: list[tuple[Any, ...]] = []
        scores: list[tuple[Any, ...]] = []
        # (in key order, so every table's rows come out in key order: no lock cycles)
        for (label, mtype), group in _metric_groups(metrics):
            if mtype == attr.METRIC_TYPE_SCORE:
                got = list(map(_SCORE_OF, group))
                m_totals.append((experiment_id, label, mtype, len(got), len(got),
                                 float(sum(got)), min(got), max(got)))
                scores += [(experiment_id, SERIES_SCORE, label, bucket, n)
                           for bucket, n in sorted(sketch.count_buckets(got).items())]
                continue
            m_totals.append((experiment_id, label, mtype, len(group), 0, 0.0, None, None))
            if mtype == attr.METRIC_TYPE_BOOLEAN:
                true = sum(map(bool, map(_BOOLEAN_OF, group)))
                counts = {k: n for k, n in (("false", len(group) - true), ("true", true)) if n}
            else:
                counts = Counter(map(_CATEGORY_OF, group))
            values += [(experiment_id, label, mtype, value, n)
                       for value, n in sorted(counts.items())]
        if scores:
            params.setdefault("value_buckets", []).extend(scores)
        params["metric_totals"] = m_totals
        if values:
            params["metric_values"] = values
    for table in ("span_totals", "value_buckets", "metric_totals", "metric_values",
                  "usage_totals"):  # one order for every writer: no lock cycles
        batch = params.get(table)
        if batch:
            _execute(cursor, table, batch, sqlite)


#: Rows per SQLite upsert statement (at most 8 columns: 2048 parameters).
_SQLITE_ROWS = 256
_sqlite_sql: dict[tuple[str, int], str] = {}


def _execute(cursor: Any, table: str, rows: list[tuple[Any, ...]], sqlite: bool) -> None:
    """Run ``table``'s upsert over ``rows``. SQLite: multi-row statements of a power of two
    rows (a few texts, cached prepared by the driver), not ``executemany``: the ``sqlite3``
    module releases and retakes the GIL around every row there (see ``events``)."""
    if not sqlite:
        cursor.execute(_SQL[False][table], _PG_UNNEST[table].literals(rows))
        return
    i, n, width = 0, len(rows), len(rows[0])
    while i < n:
        size = min(_SQLITE_ROWS, 1 << ((n - i).bit_length() - 1))
        sql = _sqlite_sql.get((table, size))
        if sql is None:
            one = "(" + ", ".join(["?"] * width) + ")"
            sql = _sqlite_sql[(table, size)] = _SQL[True][table].format(
                rows=", ".join([one] * size))
        cursor.execute(sql, [v for row in rows[i:i + size] for v in row])
        i += size


def delete_experiment(conn: sa.Connection, experiment_id: str) -> None:
    for table in AGGREGATE_TABLES:
        conn.execute(table.delete().where(table.c.experiment_id == experiment_id))


def _buckets(conn: sa.Connection, experiment_id: str,
             series: int, label: str = "") -> list[tuple[int, int]]:
    b = value_buckets.c
    return [(int(k), int(n)) for k, n in conn.execute(
        sa.select(b.bucket, b.n).where(b.experiment_id == experiment_id, b.series == series,
                                       b.label == label).order_by(b.bucket))]


def _span_stats(conn: sa.Connection, experiment_id: str, scope: int,
                row: Any) -> dict[str, Any]:
    count, errors = (int(row.span_count), int(row.error_count)) if row else (0, 0)
    lo = int(row.duration_min) if row else None
    hi = int(row.duration_max) if row else None
    latency: dict[str, Any] = {"mean": row.duration_sum / count if count else None,
                               "min": lo, "max": hi}
    latency.update(sketch.percentiles(_buckets(conn, experiment_id, scope), lo, hi))
    return {"span_count": count, "error_count": errors,
            "error_rate": errors / count if count else None, "latency_ns": latency}


def _metric_summaries(conn: sa.Connection, experiment_id: str) -> list[dict[str, Any]]:
    v = metric_values.c
    counts: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for label, mtype, value, n in conn.execute(
        sa.select(v.label, v.metric_type, v.value, v.n).where(v.experiment_id == experiment_id)
    ):
        counts.setdefault((label, mtype), []).append((value, int(n)))
    m = metric_totals.c
    out = []
    for row in conn.execute(sa.select(metric_totals).where(m.experiment_id == experiment_id)
                            .order_by(m.label, m.metric_type)):
        item: dict[str, Any] = {"label": row.label, "metric_type": row.metric_type,
                                "count": int(row.metric_count)}
        if row.metric_type == attr.METRIC_TYPE_SCORE:
            n = int(row.score_count)
            item.update(mean=row.score_sum / n if n else None, min=row.score_min,
                        max=row.score_max)
            item.update(sketch.percentiles(
                _buckets(conn, experiment_id, SERIES_SCORE, row.label),
                row.score_min, row.score_max))
        else:
            pairs = sorted(counts.get((row.label, row.metric_type), []),
                           key=lambda kv: (-kv[1], kv[0]))
            item["value_counts"] = {value: n for value, n in pairs if n}
        out.append(item)
    return out


def read_summary(conn: sa.Connection, experiment_id: str) -> dict[str, Any]:
    """The experiment's summary (the ``/summary`` document's attributes) from its aggregates."""
    t = span_totals.c
    rows = {int(r.scope): r for r in conn.execute(
        sa.select(span_totals).where(t.experiment_id == experiment_id))}
    out = _span_stats(conn, experiment_id, SERIES_SPANS, rows.get(0))
    out["root_spans"] = _span_stats(conn, experiment_id, SERIES_ROOTS, rows.get(1))
    out["metrics"] = _metric_summaries(conn, experiment_id)
    out["usage"] = read_usage(conn, experiment_id)
    return out


def read_usage(conn: sa.Connection, experiment_id: str) -> dict[str, Any]:
    """The experiment's GenAI usage (the summary's ``usage`` object): a few rows."""
    u = usage_totals.c
    return usage_document(conn.execute(
        sa.select(u.model, u.input_tokens, u.output_tokens, u.spans)
        .where(u.experiment_id == experiment_id)).all())


def duration_buckets(conn: sa.Connection, experiment_id: str,
                     roots: bool = True) -> list[tuple[int, int]]:
    """The units' (``roots``) or every span's duration histogram, in bucket order."""
    return _buckets(conn, experiment_id, SERIES_ROOTS if roots else SERIES_SPANS)


def score_buckets(conn: sa.Connection, experiment_id: str, label: str) -> list[tuple[int, int]]:
    return _buckets(conn, experiment_id, SERIES_SCORE, label)

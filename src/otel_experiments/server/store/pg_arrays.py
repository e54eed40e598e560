"""PostgreSQL: the column arrays of an ``unnest`` insert, written as array literals here.

psycopg dumps a Python list element by element in Python, escaping each text element with
a regular expression and a template (``ListDumper``): for the span documents, full of
double quotes, that was about half of the server's CPU per span on PostgreSQL. An
:class:`ArrayLiteral` is the column already written in PostgreSQL's array syntax (every text
element quoted, backslashes and double quotes escaped: the rules of "Array Value Input" in
PostgreSQL's manual), sent as one text parameter that the statement casts (``%s::text[]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["ArrayLiteral", "UnnestColumns", "array_literal", "element_kind"]


class ArrayLiteral(str):
    """A PostgreSQL array literal (``{...}``), dumped as plain text."""

    __slots__ = ()


def _text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def element_kind(sql_type: str) -> str:
    """``"text"``, ``"number"`` or ``"boolean"``: how an element of that SQL type is written."""
    sql_type = sql_type.upper()
    if sql_type == "BOOLEAN":
        return "boolean"
    if any(word in sql_type for word in ("INT", "FLOAT", "DOUBLE", "REAL", "NUMERIC")):
        return "number"
    return "text"


def array_literal(values: Iterable[Any], kind: str) -> ArrayLiteral:
    """``values`` (``None`` is NULL) as the literal of a one-dimensional array."""
    if kind == "text":
        items = ["NULL" if v is None else _text(v) for v in values]
    elif kind == "boolean":
        items = ["NULL" if v is None else ("t" if v else "f") for v in values]
    else:  # ints and floats: Python's repr is valid numeric input (never NaN / infinity here)
        items = ["NULL" if v is None else repr(v) for v in values]
    return ArrayLiteral("{" + ",".join(items) + "}")


class UnnestColumns:
    """Some columns of a table as the arrays of ``unnest(...)``: the SQL that casts each
    parameter to its column's array type, and the parameters for rows of those columns."""

    __slots__ = ("_kinds", "sql")

    def __init__(self, table: sa.Table, columns: Sequence[str], dialect: sa.Dialect) -> None:
        types = [table.c[c].type.compile(dialect) for c in columns]
        self.sql = ", ".join(f"%s::{t}[]" for t in types)
        self._kinds = tuple(element_kind(t) for t in types)

    def literals(self, rows: Sequence[Sequence[Any]]) -> tuple[ArrayLiteral, ...]:
        """One array literal per column of ``rows`` (tuples in the columns' order)."""
        return tuple(map(array_literal, zip(*rows, strict=True), self._kinds))


def _register() -> None:
    """Dump :class:`ArrayLiteral` as its text, untyped (the statement's cast types it)."""
    try:
        import psycopg
        from psycopg.adapt import Dumper
    except ImportError:  # SQLite only: never used
        return

    class _LiteralDumper(Dumper):
        def dump(self, obj: Any) -> bytes:
            if "\x00" in obj:  # (what psycopg's own text dumper says)
                raise psycopg.DataError(
                    "PostgreSQL text fields cannot contain NUL (0x00) bytes")
            encoding = self.connection.info.encoding if self.connection else "utf-8"
            return str.encode(obj, encoding)

    psycopg.adapters.register_dumper(ArrayLiteral, _LiteralDumper)


_register()

"""The array literals of PostgreSQL ``unnest`` inserts read back, through PostgreSQL's own
array parser, as exactly the values written: text with every character the array syntax
treats specially, NULLs, numbers and booleans."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_experiments.server.db import create_engine
from otel_experiments.server.store.pg_arrays import array_literal, element_kind

TRICKY = ["", "NULL", "null", " ", "a,b", "{x}", '"', "\\", '\\"', "a\nb\tc", "päivää 😀",
          '{"meta":{"input":"say \\"hi\\""},"tags":["a:b"]}', "}", "{", "'", None]


def test_element_kinds() -> None:
    assert [element_kind(t) for t in ("VARCHAR(256)", "TEXT", "BIGINT", "SMALLINT",
                                      "INTEGER", "FLOAT", "DOUBLE PRECISION", "BOOLEAN")] == [
        "text", "text", "number", "number", "number", "number", "number", "boolean"]


@pytest.fixture(scope="module")
def pg(postgres_url: str) -> sa.Engine:
    return create_engine(postgres_url)


def _round_trip(pg: sa.Engine, values: list[object], sql_type: str) -> list[object]:
    with pg.connect() as conn:
        cursor = conn.connection.cursor()
        cursor.execute(f"SELECT %s::{sql_type}[]",
                       (array_literal(values, element_kind(sql_type)),))
        result: list[object] = cursor.fetchone()[0]
        return result


def test_tricky_text_reads_back_as_written(pg: sa.Engine) -> None:
    assert _round_trip(pg, TRICKY, "text") == TRICKY


def test_numbers_and_booleans_read_back_as_written(pg: sa.Engine) -> None:
    ints = [0, -1, 2**63 - 1, -(2**63), None, 7]
    floats = [0.5, -0.0, 1e-05, 1e16, 1.7976931348623157e308, None, 3.0]
    assert _round_trip(pg, ints, "bigint") == ints
    assert _round_trip(pg, floats, "double precision") == floats
    assert _round_trip(pg, [True, False, None], "boolean") == [True, False, None]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))),
    max_size=8))
def test_any_text_reads_back_as_written(pg: sa.Engine, values: list[str | None]) -> None:
    assert _round_trip(pg, values, "text") == values


def test_a_nul_is_refused_as_psycopg_refuses_it(pg: sa.Engine) -> None:
    import psycopg

    with pytest.raises(psycopg.DataError, match="NUL"):
        _round_trip(pg, ["a\x00b"], "text")

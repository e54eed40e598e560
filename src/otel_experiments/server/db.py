"""Engine creation (SQLite tuned for WAL, PostgreSQL pooled) and programmatic migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .._compat import sqlite_adapter_registered

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: Key of the PostgreSQL advisory lock that serialises migrations across replicas.
MIGRATION_LOCK_KEY = 0x07E1_8642

#: Execution option asking SQLite for ``BEGIN IMMEDIATE`` (take the write lock up front).
WRITE = {"otel_experiments_write": True}


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


#: ``None`` for any argument, as a builtin (an adapter runs once per parameter).
_NULL: Any = {}.get


def register_none_and_bool_adapters() -> None:
    """Give ``sqlite3`` an adapter for ``None`` and for ``bool`` (unless one is registered).

    Without one, CPython 3.11's ``sqlite3`` asks each such parameter's type whether it
    adapts itself, and the type's answer is an ``AttributeError`` built (message formatted)
    and cleared again, once per parameter, walking the thread's stack of coroutines' handled
    exceptions on the way. An ingest binds a dozen NULLs and booleans per span (a root's
    parent, a span's absent usage, a metric's other value columns): measured, the server
    spent 10 us of CPU per span there at batch 1000, a quarter of it (3.12 asks without
    the exception: no difference there; 3.13: a quarter less per parameter with them). The
    adapters bind what binding the values unadapted binds (NULL; 0 and 1), for every
    ``sqlite3`` user of the process (the one visible difference: ``sqlite3.adapt(None)``
    returns ``None`` instead of raising); a registered adapter is the host's and is kept.
    """
    import sqlite3

    adapters: tuple[tuple[type[Any], Any], ...] = ((type(None), _NULL), (bool, int))
    for type_, adapter in adapters:
        if sqlite_adapter_registered(type_) is False:
            sqlite3.register_adapter(type_, adapter)


def create_engine(url: str) -> sa.Engine:
    """An engine for ``sqlite:///path`` (file created, WAL) or ``postgresql+psycopg://``."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        register_none_and_bool_adapters()
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=8,
            max_overflow=8,
        )

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy (not the sqlite3 module) decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            write = conn.get_execution_options().get("otel_experiments_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    if parsed.get_backend_name() == "postgresql":
        try:
            import psycopg  # noqa: F401  # the [postgres] extra: a SQLite user never needs it
        except ImportError:
            raise ValueError(
                "PostgreSQL needs its driver: pip install 'otel-experiments[postgres]'"
            ) from None
        return sa.create_engine(parsed, pool_size=10, max_overflow=20, pool_pre_ping=True)
    raise ValueError(
        f"unsupported database URL scheme {parsed.drivername!r}: "
        "use sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB"
    )


def _alembic_config(conn: sa.Connection | None = None) -> Config:
    """Alembic's config for the package's migrations (run on ``conn`` when given)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision``; safe to run from several replicas at once."""
    with engine.connect().execution_options(**WRITE) as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        else:
            conn.begin()
        command.upgrade(_alembic_config(conn), revision)
        conn.commit()

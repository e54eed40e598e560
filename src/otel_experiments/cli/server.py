"""``otel-experiments serve`` and ``otel-experiments migrate``: the local server."""

from __future__ import annotations

import argparse
import gc
import socket
import sys
from typing import Any

from ._common import command


def _add_database_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=None,
        help="sqlite:///PATH or postgresql+psycopg://USER:PASS@HOST:PORT/DB "
        "(default: $OTEL_EXPERIMENTS_DATABASE_URL, else a SQLite file in "
        "$OTEL_EXPERIMENTS_DATA_DIR, $XDG_DATA_HOME/otel-experiments or "
        "~/.local/share/otel-experiments)",
    )


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
        from sqlalchemy.exc import SQLAlchemyError

        from ..server import ServerSettings, create_app
        from ..server.settings import (
            LOOPBACK_HOSTS,
            api_keys_from_env,
            default_database_url,
            is_loopback,
        )
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        print(f"otel-experiments serve needs the server extra: pip install "
              f"'otel-experiments[server]' ({exc})", file=sys.stderr)
        return 1
    keys = tuple(k for k in (args.api_key or []) if k) or api_keys_from_env()
    if not keys and not is_loopback(args.host) and not args.insecure:
        print(
            f"otel-experiments: refusing to listen on {args.host} without an API key. "
            "Set --api-key / OTEL_EXPERIMENTS_SERVER_API_KEYS, or pass --insecure.",
            file=sys.stderr,
        )
        return 2
    allowed_hosts = None
    if not keys and is_loopback(args.host):
        allowed_hosts = (*LOOPBACK_HOSTS, args.host)
    try:
        settings = ServerSettings(
            database_url=args.database_url or default_database_url(),
            api_keys=keys,
            allowed_hosts=allowed_hosts,
            **({"max_body_bytes": args.max_body_bytes} if args.max_body_bytes else {}),
        )
    except ValueError as exc:  # e.g. a bad OTEL_EXPERIMENTS_SERVER_CORS_ORIGINS entry
        print(f"otel-experiments: {exc}", file=sys.stderr)
        return 2
    # The port first: a busy port is reported before any migration touches the database.
    try:
        sock = _listen(args.host, args.port)
    except OSError as exc:
        print(f"otel-experiments: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
              " (another server running? choose another --port)", file=sys.stderr)
        return 2
    try:
        app = create_app(settings)
    except (ValueError, SQLAlchemyError) as exc:
        sock.close()
        print(f"otel-experiments: cannot open the database: {exc}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    print(f"otel-experiments serve: database {_shown(settings.database_url)}\n"
          f"  web UI  {base}/\n  API     {base}/api/v2/llm-obs/v1  (OpenAPI: {base}/docs)\n"
          f"  export  OTEL_EXPERIMENTS_ENDPOINT={base}", flush=True)
    config = uvicorn.Config(app, log_level=args.log_level, access_log=args.access_log)
    _freeze_startup_objects()
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _freeze_startup_objects() -> None:
    """Move every object alive after start-up (modules, the app, SQLAlchemy's and the
    schema validator's structures: hundreds of thousands) out of the garbage collector's
    reach. An events body decodes into tens of thousands of containers, so full
    collections come every few requests, and each traversed all of these again: about a
    sixth of the CPU of an ingest at batch 1000. They live as long as the process anyway."""
    gc.collect()
    gc.freeze()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _shown(url: str) -> str:
    """The database URL without its password (and, for SQLite, the file it is)."""
    try:
        import sqlalchemy as sa

        parsed = sa.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            return f"{parsed.database} (SQLite)"
        return parsed.render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def _migrate(args: argparse.Namespace) -> int:
    from ..server.db import create_engine, current_revision, migrate
    from ..server.settings import default_database_url

    engine = create_engine(args.database_url or default_database_url())
    try:
        migrate(engine, args.revision)
        print(f"database at revision {current_revision(engine)}")
    finally:
        engine.dispose()
    return 0


def add_parsers(sub: Any) -> None:
    from ..server.settings import DEFAULT_HOST, DEFAULT_PORT  # no server extra needed

    serve = command(sub, "serve", "run the local experiments server", [
        "otel-experiments serve",
        "otel-experiments serve --port 9000 --database-url sqlite:///experiments.db",
        "otel-experiments serve --host 0.0.0.0 --api-key \"$KEY\"",
    ])
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help=f"address to listen on (default: {DEFAULT_HOST}; a non-loopback "
                       "address needs --api-key or --insecure)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"port (default: {DEFAULT_PORT}, the exporter's default endpoint)")
    _add_database_url(serve)
    serve.add_argument("--api-key", action="append", metavar="KEY",
                       help="accepted API key (repeatable; default: "
                       "$OTEL_EXPERIMENTS_SERVER_API_KEYS, comma-separated)")
    serve.add_argument("--insecure", action="store_true",
                       help="allow a non-loopback address without any API key")
    serve.add_argument("--max-body-bytes", type=int, default=None,
                       help="largest request body accepted on the wire")
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"],
                       help="server log verbosity")
    serve.add_argument("--no-access-log", dest="access_log", action="store_false",
                       help="do not log one line per request")
    serve.add_argument("--access-log", dest="access_log", action="store_true",
                       help="log one line per request (the default; undoes --no-access-log)")
    serve.set_defaults(func=_serve)

    mig = command(sub, "migrate", "upgrade the server database schema", [
        "otel-experiments migrate --database-url postgresql+psycopg://u:p@db/experiments",
    ])
    _add_database_url(mig)
    mig.add_argument("--revision", default="head",
                     help="schema revision to upgrade (or downgrade) to")
    mig.set_defaults(func=_migrate)

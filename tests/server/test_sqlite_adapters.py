"""``server.db`` registers sqlite3 adapters for ``None`` and ``bool`` (a speed-up): they must
bind what binding the values unadapted binds, and a host's own adapter must be kept.

Each case runs in a child process: the adapter registry is the whole process's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

# Stores a few spans and metrics, with NULLs and booleans in most columns, and prints every
# stored value of every table the ingest writes with its SQLite type (``typeof``), as JSON.
_STORE_AND_DUMP = textwrap.dedent("""
    import json, sqlite3, sys
    sys.path.insert(0, {tests!r})
    from server_helpers import events_body, metric, span
    from otel_experiments.server.db import create_engine, migrate
    from otel_experiments.server.ingest import parse_events
    from otel_experiments.server.store import Store

    {setup}
    engine = create_engine("sqlite:///" + {db!r})
    migrate(engine)
    store = Store(engine)
    spans = [span(1, tags=["user.id:u1"]), span(2, parent=1, status="error"),
             span(3, parent=0, dataset_record_id="rec-3"),
             span(4, attributes={{"gen_ai.usage.input_tokens": 3}})]
    metrics = [metric(1, "acc", 0.5), metric(1, "ok", True), metric(2, "ok", False),
               metric(3, "grade", "A")]
    store.ingest("exp-1", *parse_events(events_body(spans, metrics), 1000))
    store.close()
    con = sqlite3.connect({db!r})
    out = {{}}
    for table in ("spans", "metrics", "span_totals", "metric_totals", "metric_values",
                  "value_buckets", "usage_totals"):
        columns = [r[1] for r in con.execute(f"PRAGMA table_info({{table}})")
                   if r[1] not in ("seq", "received_at")]
        select = ", ".join(f"typeof({{c}}), quote({{c}})" for c in columns)
        out[table] = con.execute(f"SELECT {{select}} FROM {{table}} ORDER BY 1, 2").fetchall()
    out["adapters"] = sorted(t.__name__ for t, _ in sqlite3.adapters)
    out["bool_adapter"] = getattr(sqlite3.adapters.get((bool, sqlite3.PrepareProtocol)),
                                  "__name__", None)
    print(json.dumps(out))
""")


def _run(tmp_path: Path, name: str, setup: str = "") -> dict[str, object]:
    code = _STORE_AND_DUMP.format(tests=str(Path(__file__).parent), db=str(tmp_path / name),
                                  setup=setup)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_adapters_bind_what_unadapted_binding_binds(tmp_path: Path) -> None:
    adapted = _run(tmp_path, "adapted.db")
    assert {"NoneType", "bool"} <= set(adapted.pop("adapters"))  # type: ignore[call-overload]
    # The same ingest with the registration turned into a no-op: the driver's own binding.
    plain = _run(tmp_path, "plain.db", setup=(
        "import otel_experiments.server.db as db\n"
        "db.register_none_and_bool_adapters = lambda: None"))
    assert not {"NoneType", "bool"} & set(plain.pop("adapters"))  # type: ignore[call-overload]
    assert (adapted.pop("bool_adapter"), plain.pop("bool_adapter")) == ("int", None)
    assert adapted == plain
    spans = adapted["spans"]
    assert isinstance(spans, list) and len(spans) == 4
    kinds = {kind for row in spans for kind in row[0::2]}
    assert {"null", "integer"} <= kinds  # (the comparison above covered both kinds)


def test_a_host_adapter_is_kept(tmp_path: Path) -> None:
    host = _run(tmp_path, "host.db", setup=(
        "def host_bool(value): return int(value)\n"
        "sqlite3.register_adapter(bool, host_bool)"))
    assert host["bool_adapter"] == "host_bool"
    assert "NoneType" in host["adapters"]  # type: ignore[operator]  # (the host left it free)

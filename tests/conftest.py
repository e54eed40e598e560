"""Shared fixtures: one real SDK TracerProvider for the process, spans kept in memory."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_experiments import ExperimentSpanProcessor

_EXPORTER = InMemorySpanExporter()

# Spooled bodies never go to the real ~/.cache: set before any exporter exists, so
# subprocesses inherit it too (tests/apps/recorder.clean_env keeps this variable).
_SPOOL_ROOT = Path(tempfile.mkdtemp(prefix="otel-exp-spool-"))
os.environ["OTEL_EXPERIMENTS_SPOOL_DIR"] = str(_SPOOL_ROOT / "session")
atexit.register(shutil.rmtree, _SPOOL_ROOT, True)
_SPOOL_COUNTER = itertools.count()


def _install_global_provider() -> None:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(ExperimentSpanProcessor(default_experiment=None))
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))


_install_global_provider()


class SpanRecorder:
    """Finished spans of the global provider since the test started."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    def spans(self) -> list[ReadableSpan]:
        return list(self._exporter.get_finished_spans())

    def by_name(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, f"expected one span named {name!r}, got {len(found)}"
        return found[0]

    def attrs(self, name: str) -> dict[str, object]:
        return dict(self.by_name(name).attributes or {})


@pytest.fixture(autouse=True)
def spool_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh spool root per test (not created): a body one test could not deliver is
    never replayed into another test that reuses the same server port."""
    path = _SPOOL_ROOT / f"test-{next(_SPOOL_COUNTER)}"
    monkeypatch.setenv("OTEL_EXPERIMENTS_SPOOL_DIR", str(path))
    return path


@pytest.fixture
def recorder() -> Iterator[SpanRecorder]:
    _EXPORTER.clear()
    yield SpanRecorder(_EXPORTER)
    _EXPORTER.clear()


@pytest.fixture
def tracer() -> trace.Tracer:
    return trace.get_tracer("some.other.library")


@pytest.fixture(autouse=True)
def _fresh_scope_settings() -> Iterator[None]:
    """A test that changes OTEL_EXPERIMENTS_* and reloads leaves no settings behind."""
    yield
    from otel_experiments import settings

    settings.reload()

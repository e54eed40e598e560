"""Shared fixtures: one real SDK TracerProvider for the process, spans kept in memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_experiments import ExperimentSpanProcessor

_EXPORTER = InMemorySpanExporter()


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


@pytest.fixture
def recorder() -> Iterator[SpanRecorder]:
    _EXPORTER.clear()
    yield SpanRecorder(_EXPORTER)
    _EXPORTER.clear()


@pytest.fixture
def tracer() -> trace.Tracer:
    return trace.get_tracer("some.other.library")

"""Every access to a private OpenTelemetry name (and the one private name of the stdlib's
``sqlite3`` the server reads), in one place, each with a public fallback.

The private names save work on hot paths (a call per span, a copy per span) or reach
what the API does not expose. Each one is looked up once, here; when an SDK release
moves it, the public fallback takes over, and ``tests/test_compat.py`` fails so we know
(every fallback is exercised there too).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from opentelemetry import attributes as _otel_attributes
from opentelemetry import baggage as _otel_baggage
from opentelemetry import context as _otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.trace import Span

__all__ = [
    "BAGGAGE_KEY",
    "NATIVE_FIELD_NAMES",
    "SPAN_FIELDS",
    "SUPPRESS_INSTRUMENTATION_KEY",
    "attribute_dict",
    "baggage_of",
    "event_fields",
    "events_of",
    "get_current_context",
    "set_clean_attributes",
    "span_fields",
    "span_processors",
    "sqlite_adapter_registered",
]

_EMPTY: Final[Mapping[str, Any]] = {}

# -- the current Context ----------------------------------------------------------------
# ``context.get_current()`` is a thin wrapper over the runtime context: the processor
# calls it once per span, so it skips the wrapper.
_runtime = getattr(_otel_context, "_RUNTIME_CONTEXT", None)
# The contextvars runtime keeps the Context in one ContextVar: its C ``get`` skips a
# Python frame too (a third of an idle ``on_start``).
_current_var = getattr(_runtime, "_current_context", None)
get_current_context: Callable[[], Context] = (
    _current_var.get if isinstance(_current_var, contextvars.ContextVar)
    else _runtime.get_current if _runtime is not None and hasattr(_runtime, "get_current")
    else _otel_context.get_current
)

# -- baggage ----------------------------------------------------------------------------
# ``baggage.get_all()`` copies the baggage into a MappingProxy on every call; the
# processor reads it per span, so it reads the dict stored under the API's key.
BAGGAGE_KEY: Final[str | None] = getattr(_otel_baggage, "_BAGGAGE_KEY", None)


def _baggage_via_key(ctx: Context) -> Mapping[str, object]:
    bag = ctx.get(BAGGAGE_KEY) if BAGGAGE_KEY is not None else None
    return bag if isinstance(bag, Mapping) else _EMPTY


def _baggage_public(ctx: Context) -> Mapping[str, object]:
    return _otel_baggage.get_all(ctx)


baggage_of: Callable[[Context], Mapping[str, object]] = (
    _baggage_via_key if BAGGAGE_KEY is not None else _baggage_public
)

# -- stamping a starting span -----------------------------------------------------------
# ``Span.set_attributes`` cleans every value again (``_clean_attribute_value`` walks the
# mapping with ABC ``isinstance`` checks: ~4 us for 7 strings, more than the rest of a
# span's start). The processor's mappings hold validated, non-empty ``str`` keys and
# ``str`` values, checked once per scope: they go into ``BoundedAttributes``' own dict,
# under the span's lock and then the attributes' (the SDK's own order), when nothing needs
# cleaning, truncating or evicting. Any other case (a value length limit, a full dict, an
# ended span, a span class with its own ``set_attributes``) takes the public call.
_BoundedAttributes: Final = getattr(_otel_attributes, "BoundedAttributes", None)
_BOUNDED_FIELDS: Final = ("_dict", "_lock", "_immutable", "maxlen", "max_value_len")
_SDK_SET_ATTRIBUTES: Final = getattr(SdkSpan, "set_attributes", None)


def _bounded_fields_exist() -> bool:
    try:
        probe = _BoundedAttributes(immutable=False)  # type: ignore[misc]
    except Exception:  # pragma: no cover - the class is gone or takes other arguments
        return False
    return all(hasattr(probe, name) for name in _BOUNDED_FIELDS) and isinstance(
        probe._dict, dict
    )


DIRECT_ATTRIBUTES: Final = _bounded_fields_exist() and _SDK_SET_ATTRIBUTES is not None


def _set_public(span: Span, attributes: Mapping[str, str]) -> None:
    span.set_attributes(attributes)


def _set_direct(span: Span, attributes: Mapping[str, str]) -> None:
    """``span.set_attributes(attributes)`` for validated ``str`` keys and values: the same
    entries, order, limits and dropped count."""
    # (the SDK's own set_attributes reads span._lock, _end_time and _attributes: a span
    # whose class keeps it has them)
    if type(span).set_attributes is _SDK_SET_ATTRIBUTES:
        sdk_span: Any = span
        bounded: Any = sdk_span._attributes
        if type(bounded) is _BoundedAttributes and bounded.max_value_len is None:
            with sdk_span._lock:
                if sdk_span._end_time is None and not bounded._immutable:
                    with bounded._lock:
                        inner = bounded._dict
                        maxlen = bounded.maxlen
                        before, adding = len(inner), len(attributes)
                        if maxlen is None or before + adding <= maxlen:
                            inner.update(attributes)
                            if len(inner) != before + adding:
                                # a key was there already: the SDK deletes and re-adds it,
                                # at the end
                                for key in attributes:
                                    inner[key] = inner.pop(key)
                            return
    span.set_attributes(attributes)


set_clean_attributes: Callable[[Span, Mapping[str, str]], None] = (
    _set_direct if DIRECT_ATTRIBUTES else _set_public
)

# -- suppressing instrumentation --------------------------------------------------------
# Our own POSTs must never be traced (an HTTP client instrumentation would make spans of
# the export, exported in turn). The SDK sets this key around ``export()``; the API has
# no public name for it, and a key cannot be rebuilt from its name (``create_key``
# appends a uuid), so without it there is nothing to set: ``None``.
SUPPRESS_INSTRUMENTATION_KEY: Final[str | None] = getattr(
    _otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", None
)

# -- a provider's processors ------------------------------------------------------------
# The SDK exposes no list of a provider's span processors; ``configure()`` needs it to
# stay idempotent (not add a second processor or exporter).


def span_processors(provider: TracerProvider) -> Iterator[SpanProcessor]:
    """The processors registered on ``provider``, nested multi-processors flattened.

    Yields nothing when the SDK's private names are gone (``configure()`` then adds its
    processors without checking for existing ones: spans may be stamped twice, harmlessly).
    """
    stack: list[object] = [getattr(provider, "_active_span_processor", None)]
    while stack:
        proc = stack.pop()
        if proc is None:
            continue
        children = getattr(proc, "_span_processors", None)
        if isinstance(children, tuple):
            stack.extend(reversed(children))
        elif isinstance(proc, SpanProcessor):
            yield proc


# -- a finished span's attributes and events --------------------------------------------
# ``span.attributes`` of the SDK returns a MappingProxy over ``BoundedAttributes``, whose
# ``.get`` is a Python method; its inner dict's ``.get`` runs at C speed. A finished span
# is immutable, so reading the inner dict is safe. The converter reads ~12 keys per span.


def attribute_dict(attributes: Any) -> Mapping[str, Any]:
    """The plain dict behind the SDK's ``BoundedAttributes``, else the mapping itself."""
    inner = getattr(attributes, "_dict", None)
    if isinstance(inner, dict):
        return inner
    return attributes if attributes is not None else _EMPTY


#: The ``ReadableSpan`` fields the converter reads, by the SDK's private names.
SPAN_FIELDS: Final = (
    "_name", "_context", "_parent", "_start_time", "_end_time", "_status", "_kind",
    "_resource", "_attributes", "_events",
)


#: The private names the C encoder (``events/_speedups_src/``) reads, in its order: the span
#: fields above, ``BoundedAttributes._dict``, ``BoundedList._dq``, ``Status._status_code``
#: and ``Event._timestamp`` (a span without them is declined and converted in Python).
NATIVE_FIELD_NAMES: Final = (
    "_name", "_context", "_parent", "_start_time", "_end_time", "_status", "_kind",
    "_resource", "_attributes", "_events", "_dict", "_dq", "_status_code", "_timestamp",
)


def _span_fields_public(span: ReadableSpan) -> Mapping[str, Any]:
    return {
        "_name": span.name, "_context": span.context, "_parent": span.parent,
        "_start_time": span.start_time, "_end_time": span.end_time, "_status": span.status,
        "_kind": span.kind, "_resource": span.resource, "_attributes": span.attributes,
        "_events": span.events,
    }


def span_fields(span: ReadableSpan) -> Mapping[str, Any]:
    """A finished span's fields in one mapping (keys :data:`SPAN_FIELDS`).

    The SDK's ``ReadableSpan`` keeps them in its ``__dict__``: one lookup instead of ten
    property calls per span. Another span class gets the public properties.
    """
    fields = getattr(span, "__dict__", None)
    if fields is not None and "_events" in fields and "_status" in fields:
        return fields  # type: ignore[no-any-return]
    return _span_fields_public(span)


def event_fields(event: Any) -> tuple[str, Mapping[str, Any], int | None]:
    """``(name, attributes as a plain dict, timestamp)`` of a span event."""
    fields = getattr(event, "__dict__", None)
    if fields is not None and "_attributes" in fields:
        return fields["_name"], attribute_dict(fields["_attributes"]), fields.get("_timestamp")
    return event.name, attribute_dict(event.attributes), event.timestamp


def events_of(raw_events: Any) -> Sequence[Event]:
    """The events behind a span's ``_events`` (the SDK's ``BoundedList``: its deque)."""
    inner = getattr(raw_events, "_dq", None)
    return inner if inner is not None else (raw_events or ())


# -- sqlite3's adapter registry ----------------------------------------------------------
# The server registers adapters for ``None`` and ``bool`` (``server.db``), but must keep
# one the host application registered. ``sqlite3`` has no public way to ask: its registry
# is the module's ``adapters`` dict, keyed by ``(type, sqlite3.PrepareProtocol)``.


def sqlite_adapter_registered(type_: type) -> bool | None:
    """Whether ``sqlite3`` has an adapter for ``type_``; ``None`` when the registry cannot
    be read (then nothing should be registered over what may be there)."""
    import sqlite3  # (only the server needs it)

    registry = getattr(sqlite3, "adapters", None)
    if not isinstance(registry, dict):
        return None
    return (type_, sqlite3.PrepareProtocol) in registry

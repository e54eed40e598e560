"""Redaction: what must not leave the process is masked in the event before it is sent.

A :class:`Redactor` is built from ``OTEL_EXPERIMENTS_REDACT`` (a comma-separated list of
rules), ``OTEL_EXPERIMENTS_HASH_USER_IDS_KEY`` and an optional hook, and applied by the
exporter to every span event (and its metrics) before encoding:

* a **key** (``user.name``, ``password``, ``input.value``): a span attribute of that
  name is masked in the event's tags (``user.name:[REDACTED]``) and ``attributes``; an object key of that
  name is masked at any depth of ``input``, ``output``, ``expected_output``,
  ``metadata`` and ``error`` and in the metrics' ``metadata``; the payload attributes
  ``input.value`` / ``output.value`` / ``expected_output.value`` / ``metadata`` mask
  the whole payload;
* a **JSON path** over the span event, starting with ``$``: ``$.meta.input.ssn``,
  ``$.meta.metadata.*.token`` (``*`` any key or index), ``$.meta.input.messages[0]``,
  ``$..email`` (any depth), ``$.name`` (the span name);
* ``hash_key``: ``user.id`` tags carry ``HMAC-SHA256(key, id)`` (hex) instead of the
  id: the same user keeps the same pseudonym across spans and processes, and nobody
  without the key can reverse it;
* the ``hook`` runs last, over the (already masked) event dict: it returns the event
  to send (changed in place or a new one) or ``None`` to drop the span. A hook that
  raises drops the span too (fail closed: a redaction bug never leaks data).

Pure: no I/O; the exporter counts the spans dropped here (``redacted``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from typing import Any, Final

from ..attributes import (
    EXPECTED_OUTPUT_VALUE,
    INPUT_VALUE,
    METADATA,
    OUTPUT_VALUE,
    USER_ID,
)

__all__ = ["MASK", "RedactHook", "Redactor"]

#: What a masked value becomes.
MASK: Final = "[REDACTED]"

#: A callable over the event about to be sent: the event to send, or ``None`` to drop it.
RedactHook = Callable[[dict[str, Any]], "dict[str, Any] | None"]

#: Payload attributes -> the ``meta`` field they become.
_PAYLOAD_FIELDS: Final = {
    INPUT_VALUE: "input", OUTPUT_VALUE: "output", EXPECTED_OUTPUT_VALUE: "expected_output",
    METADATA: "metadata",
}
_META_FIELDS: Final = ("input", "output", "expected_output", "metadata", "error")
_TOKEN: Final = re.compile(r"\.\.|\.([^.\[\]]+)|\[(\*|\d+)\]")
_ANY: Final = object()
_DEEP: Final = object()


def _parse_path(path: str) -> list[object] | None:
    """``$.a.*[0]..b`` -> ``["a", _ANY, 0, _DEEP, "b"]``; ``None`` if malformed."""
    rest = path[1:]
    steps: list[object] = []
    pos = 0
    while pos < len(rest):
        match = _TOKEN.match(rest, pos)
        if match is None:
            return None
        if match.group(0) == "..":
            steps.append(_DEEP)
            # ``..name``: the name follows without its own dot
            name = re.match(r"[^.\[\]]+", rest[match.end():])
            if name is not None:
                steps.append(name.group(0))
                pos = match.end() + name.end()
                continue
        elif match.group(1) is not None:
            steps.append(_ANY if match.group(1) == "*" else match.group(1))
        else:
            steps.append(_ANY if match.group(2) == "*" else int(match.group(2)))
        pos = match.end()
    return steps if steps and steps[-1] is not _DEEP else None


class Redactor:
    """Masks one span event (and its metrics) in place; see the module docstring."""

    def __init__(self, rules: Iterable[str] = (), *, hash_key: str | None = None,
                 hook: RedactHook | None = None) -> None:
        self.keys = frozenset(rule for rule in rules if not rule.startswith("$"))
        self.paths: list[list[object]] = []
        self.invalid: list[str] = []
        for rule in rules:
            if rule.startswith("$"):
                steps = _parse_path(rule)
                if steps is None:
                    self.invalid.append(rule)
                else:
                    self.paths.append(steps)
        self._payloads = [field for key, field in _PAYLOAD_FIELDS.items() if key in self.keys]
        self._hash_key = hash_key.encode("utf-8") if hash_key else None
        self._hook = hook

    def __bool__(self) -> bool:
        return bool(self.keys or self.paths or self._hash_key or self._hook)

    def __call__(self, event: dict[str, Any], metrics: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The event to send, or ``None`` to drop it. Exceptions are the caller's to count."""
        if self.keys or self._hash_key:
            tags = event.get("tags")
            if isinstance(tags, list):
                event["tags"] = [self._tag(tag) for tag in tags]
        kept = event.get("attributes")
        if self.keys and isinstance(kept, dict):
            for key in self.keys.intersection(kept):
                kept[key] = MASK
        meta = event.get("meta")
        if self.keys and isinstance(meta, dict):
            for field in self._payloads:
                if field in meta:
                    meta[field] = MASK
            for field in _META_FIELDS:
                if field in meta:
                    meta[field] = self._mask_keys(meta[field])
            for metric in metrics:
                if "metadata" in metric:
                    metric["metadata"] = self._mask_keys(metric["metadata"])
        for steps in self.paths:
            _mask_path(event, steps)
        if self._hook is not None:
            result = self._hook(event)
            if result is not None and not isinstance(result, dict):
                raise TypeError(f"the redaction hook returned {type(result).__name__}, not a dict")
            return result
        return event

    def _tag(self, tag: object) -> object:
        if not isinstance(tag, str):
            return tag
        key, sep, value = tag.partition(":")
        if not sep:
            return tag
        if key in self.keys:
            return f"{key}:{MASK}"
        if key == USER_ID and self._hash_key is not None:
            return f"{key}:{self.pseudonym(value)}"
        return tag

    def pseudonym(self, user_id: str) -> str:
        """The keyed hash sent instead of a user id (hex HMAC-SHA256)."""
        assert self._hash_key is not None
        return hmac.new(self._hash_key, user_id.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).hexdigest()

    def _mask_keys(self, value: Any, depth: int = 0) -> Any:
        if depth > 64:  # payloads are bounded, but never recurse without a bound
            return value
        if isinstance(value, dict):
            return {k: MASK if k in self.keys else self._mask_keys(v, depth + 1)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._mask_keys(item, depth + 1) for item in value]
        return value


def _mask_path(node: Any, steps: list[object], depth: int = 0) -> None:
    """Mask what ``steps`` reaches under ``node`` (in place)."""
    if not steps or depth > 64:
        return
    step, rest = steps[0], steps[1:]
    if step is _DEEP:
        # the remaining path may start here or at any depth below
        _mask_path(node, rest, depth + 1)
        for child in _children(node):
            _mask_path(child, steps, depth + 1)
        return
    for key in _matches(node, step):
        if rest:
            _mask_path(node[key], rest, depth + 1)
        else:
            node[key] = MASK


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def _matches(node: Any, step: object) -> list[Any]:
    if isinstance(node, dict):
        if step is _ANY:
            return list(node)
        return [step] if isinstance(step, str) and step in node else []
    if isinstance(node, list):
        if step is _ANY:
            return list(range(len(node)))
        return [step] if isinstance(step, int) and 0 <= step < len(node) else []
    return []

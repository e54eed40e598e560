"""Sending one experiment's spans: encode into bodies, POST, split what is refused,
keep what could not be delivered. The exporter's inner loop (:class:`GroupSender`), with
every outcome counted in the delivery report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from opentelemetry.sdk.trace import ReadableSpan

from .. import settings as _settings
from .._runtime.logs import WarnOnce
from ..events.bodies import Encoded, Item, encode_bodies, pack_encoded
from ..events.convert import iter_span_events
from ..events.dialects import DDTRACE, ddtrace_envelope, ddtrace_items
from ..events.native import NATIVE, encode_span_groups
from ..events.redact import Redactor
from ..events.shapes import KeptAttributes
from ..models import validate_id
from ..settings import ExporterSettings
from .delivery import HttpDelivery
from .report import DeliveryStats
from .rules import Verdict
from .spool import Part, Spool

__all__ = ["GroupSender", "Held"]

#: What a group holds: the converter's dicts (when a redaction hook or the ddtrace
#: dialect works on them) or, otherwise, spans already encoded (events.native).
Held = Item | Encoded


class GroupSender:
    """Encodes, sends, splits and keeps the bodies of one experiment at a time."""

    def __init__(self, settings: ExporterSettings, delivery: HttpDelivery, spool: Spool | None,
                 stats: DeliveryStats, warn_once: WarnOnce,
                 events_path: Callable[[str], str]) -> None:
        self.settings = settings
        #: which span attributes the events carry (``gen_ai.*`` and the listed ones)
        self._kept = KeptAttributes(settings.span_attributes)
        self._delivery = delivery
        self._spool = spool
        self._stats = stats
        self._warn_once = warn_once
        self._events_path = events_path

    def group(self, spans: Sequence[ReadableSpan], redactor: Redactor | None
              ) -> tuple[dict[str, list[Held]], bool]:
        """Spans as events per valid experiment id, masked; ``(groups, all valid)``.
        Spans the redaction hook drops, or with an invalid experiment id, are counted."""
        groups: dict[str, list[Held]] = {}
        ok = True
        if NATIVE and redactor is None and self.settings.dialect != DDTRACE:
            encoded, unencodable = encode_span_groups(spans, self._kept)
            groups = cast("dict[str, list[Held]]", encoded)
            if unencodable:  # as send_group reports them on the dict path: not all sent
                self._count_unencodable(unencodable)
                ok = False
        else:  # the dicts: one dumps per body (encode_bodies) beats one per span
            for experiment_id, event, metrics in iter_span_events(spans, self._kept):
                if redactor is not None:
                    masked = self._redact(redactor, event, metrics)
                    if masked is None:
                        continue
                    event = masked
                group = groups.get(experiment_id)
                if group is None:
                    group = groups[experiment_id] = []
                group.append((event, metrics))
        for experiment_id in list(groups):
            try:
                validate_id(experiment_id, "experiment.id")
            except (TypeError, ValueError) as exc:
                ok = False
                items = groups.pop(experiment_id)
                self._stats.dropped(len(items), "invalid_experiment_id")
                self._warn_once(
                    "bad-experiment-id",
                    "otel-experiments: %d span(s) dropped: invalid experiment.id (%s)",
                    len(items),
                    str(exc)[:200],
                )
        return groups, ok

    def _redact(self, redactor: Redactor, event: dict[str, Any],
                metrics: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The masked event, or ``None`` (counted): dropped by the hook, or the hook failed
        (fail closed: a broken redaction never sends the unmasked span)."""
        try:
            masked = redactor(event, metrics)
        except Exception:
            self._warn_once("redact-hook", "otel-experiments: the redaction hook failed; "
                            "the span is dropped, not sent unmasked", exc_info=True)
            masked = None
        if masked is None:
            self._stats.dropped(1, "redacted")
        return masked

    def send_group(
        self, experiment_id: str, items: list[Held], deadline: float, send: bool = True
    ) -> tuple[bool, int]:
        """Encode and send one experiment's spans; ``(all delivered, spans spooled)``.

        A body the server rejects for its content (400/413/422) is split in halves and
        each half sent on its own, so one span the server refuses costs only itself,
        not the batch it travelled in.
        """
        ok = True
        spooled = 0
        refused = 0
        if self.settings.dialect == DDTRACE:  # ddtrace's ids and spellings, once per span
            items = cast("list[Held]", ddtrace_items(experiment_id, cast("list[Item]", items)))
        bodies, dropped = self._encode(items)
        path = self._events_path(experiment_id)
        url = self.settings.endpoint + path
        pending = list(reversed(bodies))  # a stack: halves go next, in order
        while pending:
            body, held = pending.pop()
            content = self._delivery.encode(body)
            if not send:  # straight to the spool (overflow)
                spooled += self._keep(path, content, len(held))
                ok = False
                continue
            try:
                verdict = self._delivery.send_encoded(url, content, len(held), deadline)
            except Exception:
                self._warn_once(
                    "unexpected-send",
                    "otel-experiments: unexpected error sending %d span(s) of experiment %r; "
                    "kept for later",
                    len(held),
                    experiment_id[:80],
                    exc_info=True,
                )
                # keep this body and the ones not tried yet
                spooled += self._keep(path, content, len(held))
                for rest_body, rest in reversed(pending):
                    spooled += self._keep(path, self._delivery.encode(rest_body), len(rest))
                return False, spooled
            if verdict is Verdict.DELIVERED:
                self._stats.delivered(len(held))
                continue
            ok = False
            if verdict is Verdict.KEEP:
                spooled += self._keep(path, content, len(held))
            elif verdict is Verdict.SPLIT and len(held) > 1:
                half = len(held) // 2
                for part in (held[half:], held[:half]):
                    parts, lost = self._encode(part)
                    dropped += lost
                    pending.extend(reversed(parts))
            else:
                refused += len(held)
        if refused:
            self._stats.dropped(refused, "rejected")
        if dropped:
            self._count_unencodable(dropped)
        if refused and refused < len(items):
            self._warn_once(
                "refused",
                "otel-experiments: the server refused %d span(s) of a batch of %d; the "
                "others were sent on their own",
                refused,
                len(items),
            )
        return ok and not dropped, spooled

    def encode_group(self, experiment_id: str, items: list[Held]) -> list[Part]:
        """One experiment's spans as bodies ready for the spool, without the network
        (the batch processor's overflow); spans that cannot be encoded are counted."""
        if self.settings.dialect == DDTRACE:
            items = cast("list[Held]", ddtrace_items(experiment_id, cast("list[Item]", items)))
        bodies: list[tuple[bytes, list[Held]]] = []
        dropped = 0
        step = self.settings.max_spans_per_request
        for start in range(0, len(items), step):
            # a request's worth at a time: each is encoded in one call (encode_bodies'
            # fast path) instead of span by span, a third of the spill's CPU
            encoded, lost = self._encode(items[start:start + step])
            bodies += encoded
            dropped += lost
        if dropped:
            self._count_unencodable(dropped)
        path = self._events_path(experiment_id)
        return [Part(path, len(held), self._delivery.encode(body)) for body, held in bodies]

    def _encode(self, items: list[Held]) -> tuple[list[tuple[bytes, list[Held]]], int]:
        limits = (self.settings.max_body_bytes, self.settings.max_spans_per_request,
                  self._warn_oversize)
        if items and type(items[0][0]) is bytes:  # a group is all encoded or all dicts
            packed = pack_encoded(cast("list[Encoded]", items), *limits)
            return cast("list[tuple[bytes, list[Held]]]", packed), 0
        bodies, dropped = encode_bodies(cast("list[Item]", items), *limits)
        if self.settings.dialect == DDTRACE:
            bodies = [(ddtrace_envelope(body), held) for body, held in bodies]
        return cast("list[tuple[bytes, list[Held]]]", bodies), dropped

    def _count_unencodable(self, count: int) -> None:
        self._stats.dropped(count, "encoding")
        self._warn_once(
            "encode", "otel-experiments: %d span(s) could not be JSON-encoded", count
        )

    def _keep(self, path: str, content: bytes, count: int) -> int:
        """Spool one undelivered body; the number of spans kept (0: dropped, logged)."""
        if self._spool is None:
            self._stats.dropped(
                count, "spool_off", f"{_settings.OTEL_EXPERIMENTS_SPOOL_MAX_BYTES}=0"
            )
            return 0
        # a failed put is counted by the spool (spool_full / spool_error)
        if not self._spool.put(path, content, count, self._delivery.content_encoding):
            return 0
        self._stats.spooled(count)
        return count

    def _warn_oversize(self, size: int) -> None:
        self._warn_once(
            "oversize",
            "otel-experiments: one span is %d bytes, over max_body_bytes=%d; sending it alone",
            size,
            self.settings.max_body_bytes,
        )

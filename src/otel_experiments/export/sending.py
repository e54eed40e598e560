"""Sending one experiment's spans: encode into bodies, POST, split what is refused,
keep what could not be delivered. The exporter's inner loop (:class:`GroupSender`), with
every outcome counted in the delivery report.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import settings as _settings
from .._runtime.logs import WarnOnce
from ..events.bodies import Item, encode_bodies
from ..events.dialects import DDTRACE, ddtrace_envelope, ddtrace_items
from ..settings import ExporterSettings
from .delivery import HttpDelivery
from .report import DeliveryStats
from .rules import Verdict
from .spool import Spool

__all__ = ["GroupSender"]


class GroupSender:
    """Encodes, sends, splits and keeps the bodies of one experiment at a time."""

    def __init__(self, settings: ExporterSettings, delivery: HttpDelivery, spool: Spool | None,
                 stats: DeliveryStats, warn_once: WarnOnce,
                 events_path: Callable[[str], str]) -> None:
        self.settings = settings
        self._delivery = delivery
        self._spool = spool
        self._stats = stats
        self._warn_once = warn_once
        self._events_path = events_path

    def send_group(
        self, experiment_id: str, items: list[Item], deadline: float, send: bool = True
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
            items = ddtrace_items(experiment_id, items)
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
            self._stats.dropped(dropped, "encoding")
            self._warn_once(
                "encode", "otel-experiments: %d span(s) could not be JSON-encoded", dropped
            )
        if refused and refused < len(items):
            self._warn_once(
                "refused",
                "otel-experiments: the server refused %d span(s) of a batch of %d; the "
                "others were sent on their own",
                refused,
                len(items),
            )
        return ok and not dropped, spooled

    def _encode(self, items: list[Item]) -> tuple[list[tuple[bytes, list[Item]]], int]:
        bodies, dropped = encode_bodies(
            items, self.settings.max_body_bytes, self.settings.max_spans_per_request, self._warn_oversize
        )
        if self.settings.dialect == DDTRACE:
            bodies = [(ddtrace_envelope(body), held) for body, held in bodies]
        return bodies, dropped

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

"""Making sure the run's spans reach the backend, and saying how many did."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from ..sdk.configure import configure, configured_handle
from ..settings import ExporterSettings

if TYPE_CHECKING:
    from ..client import ExperimentsClient

logger = logging.getLogger("otel_experiments.runner")

_COUNTS = ("delivered", "retried", "spooled", "replayed", "dropped")


def ensure_export(client: ExperimentsClient,
                  tracer_provider: trace.TracerProvider | None) -> Any:
    """``configure()`` the provider to stamp and export to the client's endpoint.

    Reuses what is there: a provider already configured (or already exporting experiment
    events) keeps its own exporter. The handle stays open for later runs in the process
    (shut down at exit by ``configure``), as one client per process should.
    """
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    # configure() already called for this provider (by the application, or an earlier
    # run): that configuration stays, and asking again with other arguments would warn.
    existing = configured_handle(provider)
    if existing is not None:
        return existing
    if client.settings == ExporterSettings.resolve():
        # the client follows the environment, as configure() does: ask for nothing more, so
        # a provider the application configured itself is reused without a warning
        return configure(tracer_provider=tracer_provider)
    return configure(tracer_provider=tracer_provider, settings=client.settings)


def _snapshot(handle: Any) -> dict[str, Any] | None:
    report_of = getattr(handle, "delivery_report", None)
    if not callable(report_of):
        return None
    try:
        report = report_of()
    except Exception:
        logger.debug("otel-experiments: delivery_report() failed", exc_info=True)
        return None
    out: dict[str, Any] = {k: int(getattr(report, k, 0) or 0) for k in _COUNTS}
    out["dropped_by_reason"] = dict(getattr(report, "dropped_by_reason", None) or {})
    out["last_error"] = getattr(report, "last_error", None)
    return out


@dataclass
class Delivery:
    """Counts of the configured exporter over one run (differences of its report)."""

    handle: Any
    before: dict[str, Any] | None = None

    @classmethod
    def start(cls, handle: Any) -> Delivery:
        return cls(handle, _snapshot(handle))

    def finish(self, timeout_s: float = 30.0) -> dict[str, Any]:
        flushed = True
        try:
            flushed = bool(self.handle.force_flush(int(timeout_s * 1000)))
            provider = getattr(self.handle, "tracer_provider", None)
            if getattr(self.handle, "exporter", None) is None and provider is not None:
                # the provider exported before configure() was called (the application's
                # own exporter): flush it all, or a resume could miss the last records
                flushed = bool(provider.force_flush(int(timeout_s * 1000))) and flushed
        except Exception:
            flushed = False
        after = _snapshot(self.handle)
        out: dict[str, Any] = {"flushed": flushed, "exporting": bool(
            getattr(self.handle, "enabled", False))}
        if after is not None:
            before = self.before or {}
            for key in _COUNTS:
                out[key] = after[key] - int(before.get(key, 0))
            reasons = dict(after["dropped_by_reason"])
            for reason, count in (before.get("dropped_by_reason") or {}).items():
                reasons[reason] = reasons.get(reason, 0) - count
            out["dropped_by_reason"] = {k: v for k, v in reasons.items() if v}
            out["last_error"] = after["last_error"]
        return out


def delivery_line(delivery: dict[str, Any]) -> str:
    """One line for the end of a run; never silent about a loss."""
    if not delivery.get("exporting"):
        return "spans: not exported (configure() is disabled: OTEL_SDK_DISABLED / " \
               "OTEL_EXPERIMENTS_ENABLED)"
    if "delivered" in delivery:
        line = (f"spans: {delivery['delivered']} delivered, {delivery['spooled']} spooled "
                f"(sent later), {delivery['dropped']} dropped")
        reasons = delivery.get("dropped_by_reason") or {}
        if reasons:
            line += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) + ")"
        if delivery.get("last_error") and (delivery["dropped"] or delivery["spooled"]):
            line += f"; last error: {delivery['last_error']}"
        if delivery.get("offline"):
            line += "; the server was unreachable: spooled spans are sent when it is back"
        return line
    if delivery.get("offline"):
        return ("spans: the server was unreachable; undelivered spans are spooled on disk and "
                "sent when it is back (see the warnings above)")
    if delivery.get("flushed"):
        return "spans: all flushed to the exporter"
    return "spans: flush did not finish in time; some may be spooled or lost (see the log)"


def delivery_is_clean(delivery: dict[str, Any]) -> bool:
    if "delivered" in delivery:
        return not delivery["dropped"] and not delivery["spooled"]
    return bool(delivery.get("flushed")) and not delivery.get("offline")


__all__ = ["Delivery", "delivery_is_clean", "delivery_line", "ensure_export"]

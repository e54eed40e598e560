"""The export layer: finished spans to the experiments backend, nothing lost.

================  ===============================================================
module            concept
================  ===============================================================
:mod:`.exporter`  ``ExperimentEventsExporter`` (the SDK ``SpanExporter``)
:mod:`.rules`     the delivery rules: ``classify()`` of an answer (stated once)
:mod:`.delivery`  ``HttpDelivery``: pooled httpx client, gzip, retries in a deadline
:mod:`.posting`   one POST as a thread target, response read with a bound
:mod:`.spool`     ``Spool``: bounded on-disk directory of bodies kept for later
================  ===============================================================
"""

from __future__ import annotations

from .exporter import EVENTS_PATH, ExperimentEventsExporter
from .rules import Decision, Verdict, classify

__all__ = ["EVENTS_PATH", "Decision", "ExperimentEventsExporter", "Verdict", "classify"]

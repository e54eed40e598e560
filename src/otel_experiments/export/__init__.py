"""The export layer: finished spans to the experiments backend, nothing lost.

================  ===============================================================
module            concept
================  ===============================================================
:mod:`.exporter`  ``ExperimentEventsExporter`` (the SDK ``SpanExporter``)
:mod:`.sending`   ``GroupSender``: one experiment's bodies sent, split or kept
:mod:`.rules`     the delivery rules: ``classify()`` of an answer (stated once)
:mod:`.delivery`  ``HttpDelivery``: pooled httpx client, gzip, retries in a deadline
:mod:`.posting`   one POST as a thread target, response read with a bound
:mod:`.spool`     ``Spool``: bounded on-disk directory of bodies kept for later
:mod:`.replay`    ``SpoolReplayer``: spooled bodies sent again, in the background too
:mod:`.report`    ``DeliveryReport``: counts of what became of the spans (and metrics)
================  ===============================================================
"""

from __future__ import annotations

from .exporter import EVENTS_PATH, ExperimentEventsExporter
from .report import DeliveryReport
from .rules import Decision, Verdict, classify

__all__ = [
    "EVENTS_PATH",
    "Decision",
    "DeliveryReport",
    "ExperimentEventsExporter",
    "Verdict",
    "classify",
]

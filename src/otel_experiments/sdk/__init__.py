"""The OpenTelemetry SDK plug-ins: the processor, ``configure()`` and the entry points.

===================  ========================================================
module               concept
===================  ========================================================
:mod:`.processor`    ``ExperimentSpanProcessor``: stamps spans at start
:mod:`.configure`    ``configure()`` and its ``ExperimentsHandle``
:mod:`.instrument`   ``ExperimentsInstrumentor`` (``opentelemetry-instrument``)
===================  ========================================================
"""

from __future__ import annotations

from .configure import ExperimentsHandle, configure
from .processor import ExperimentSpanProcessor

__all__ = ["ExperimentSpanProcessor", "ExperimentsHandle", "configure"]

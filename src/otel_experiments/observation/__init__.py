"""The observe layer: a span per unit of work, and what is recorded on it.

===============  ==========================================================
module           concept
===============  ==========================================================
:mod:`.start`    ``start_observe`` (context manager and decorator)
:mod:`.span`     ``ObservedSpan`` and ``observe.*`` (input, output, metrics)
:mod:`.payload`  values to bounded attribute text (JSON, truncation marker)
:mod:`.metrics`  ``record_metric``: evaluations as ``experiment.metric`` events
===============  ==========================================================
"""

from __future__ import annotations

from .metrics import record_metric
from .span import OBSERVED_SPAN_KEY, ObservedSpan, current_observed_span, observe
from .start import start_observe

__all__ = [
    "OBSERVED_SPAN_KEY",
    "ObservedSpan",
    "current_observed_span",
    "observe",
    "record_metric",
    "start_observe",
]

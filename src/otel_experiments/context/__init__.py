"""The context layer: which experiment and identity are active, in-process and across services.

==========================  =====================================================
module                      concept
==========================  =====================================================
:mod:`.scope`               ``ExperimentScope``: experiment + identity + attributes
:mod:`.baggage`             scopes in W3C Baggage, out and (validated) in
:mod:`.active`              attaching a scope to a Context, reading the current one
:mod:`.scoped`              the one ``with`` / ``async with`` / decorator helper
:mod:`.experiment_context`  ``experiment_context`` (a scope without a span)
:mod:`.threads`             carrying the Context into threads and executors
==========================  =====================================================
"""

from __future__ import annotations

from .active import context_with_scope, current_experiment, current_identity, current_scope
from .experiment_context import experiment_context
from .scope import SCOPE_KEY, ExperimentScope, scope_attributes
from .threads import ContextExecutor, bind_context

__all__ = [
    "SCOPE_KEY",
    "ContextExecutor",
    "ExperimentScope",
    "bind_context",
    "context_with_scope",
    "current_experiment",
    "current_identity",
    "current_scope",
    "experiment_context",
    "scope_attributes",
]

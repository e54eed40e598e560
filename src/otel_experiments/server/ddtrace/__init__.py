"""ddtrace's LLM Observability experiments, unchanged, against this server.

Point ``DD_LLMOBS_OVERRIDE_ORIGIN`` at the server (with any ``DD_API_KEY``, or one of the
server's keys) and ``LLMObs.create_dataset`` / ``LLMObs.experiment(...).run()`` store their
datasets, experiments, spans and metrics here, listed by our API next to our own:

* :mod:`.routes` -- the endpoints ddtrace calls (projects, datasets, ``batch_update``,
  experiments, events, the span intake, the reads behind ``pull_dataset`` /
  ``pull_experiment`` / ``list_experiments``);
* :mod:`.ingest` -- ddtrace's bodies translated (:mod:`otel_experiments.events.dialects`)
  and stored through our own ingest;
* :mod:`.shapes` -- the response members ddtrace reads;
* :mod:`.dispatch` -- ddtrace's queries on our experiments list path.
"""

from __future__ import annotations

from .dispatch import DdtraceQueryDispatch
from .routes import push_ddtrace_events, router

__all__ = ["DdtraceQueryDispatch", "push_ddtrace_events", "router"]

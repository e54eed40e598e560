"""Attribute, baggage and span-event names: the only place they are spelled.

Span attribute keys and W3C Baggage keys are deliberately the same strings, so a span
stamped from in-process context and a span stamped from inbound baggage look identical,
and tools such as ``opentelemetry-processor-baggage`` produce the same attributes.
"""

from __future__ import annotations

from typing import Final

EXPERIMENT_ID: Final = "experiment.id"
EXPERIMENT_NAME: Final = "experiment.name"
EXPERIMENT_FEATURE_SLUG: Final = "experiment.feature_slug"
USER_ID: Final = "user.id"
USER_NAME: Final = "user.name"
ORGANIZATION_ID: Final = "organization.id"
ORGANIZATION_NAME: Final = "organization.name"

#: Every attribute the processor may stamp, in a stable order.
STAMPED_KEYS: Final = (
    EXPERIMENT_ID,
    EXPERIMENT_NAME,
    EXPERIMENT_FEATURE_SLUG,
    ORGANIZATION_ID,
    ORGANIZATION_NAME,
    USER_ID,
    USER_NAME,
)

#: ``"true"`` on the entry span of a unit of work: the span that was current when
#: ``experiment_context`` was entered (a web framework's server span), or a
#: ``start_observe`` span opened outside any experiment. The server counts units by it.
EXPERIMENT_ENTRY: Final = "experiment.entry"

#: Identity names are personal data: only propagated in baggage when enabled.
PII_KEYS: Final = frozenset({USER_NAME, ORGANIZATION_NAME})

# OpenInference conventions for the payload of a unit of work.
INPUT_VALUE: Final = "input.value"
INPUT_MIME_TYPE: Final = "input.mime_type"
OUTPUT_VALUE: Final = "output.value"
OUTPUT_MIME_TYPE: Final = "output.mime_type"
METADATA: Final = "metadata"
EXPECTED_OUTPUT_VALUE: Final = "expected_output.value"
EXPECTED_OUTPUT_MIME_TYPE: Final = "expected_output.mime_type"
DATASET_RECORD_ID: Final = "experiment.dataset_record_id"
#: Key in a record span's ``metadata`` holding which run of the record it is (0, 1, ...)
#: when ``run_experiment(..., repetitions=k)`` runs each record k > 1 times.
REPETITION: Final = "experiment.repetition"

# OpenTelemetry GenAI semantic conventions the server reads token usage from (the
# ``prompt`` / ``completion`` names are the conventions' older spelling, still emitted).
GEN_AI_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"

MIME_JSON: Final = "application/json"
MIME_TEXT: Final = "text/plain"

#: Marks the root span a ``start_observe`` scope created (its feature slug / name).
OBSERVE_FEATURE_SLUG: Final = "observe.feature_slug"

# Evaluation metrics are recorded as span events with these names and attributes.
METRIC_EVENT_NAME: Final = "experiment.metric"
METRIC_LABEL: Final = "metric.label"
METRIC_TYPE: Final = "metric.type"
METRIC_VALUE: Final = "metric.value"
METRIC_METADATA: Final = "metric.metadata"
METRIC_TIMESTAMP_MS: Final = "metric.timestamp_ms"

METRIC_TYPE_SCORE: Final = "score"
METRIC_TYPE_CATEGORICAL: Final = "categorical"
METRIC_TYPE_BOOLEAN: Final = "boolean"
METRIC_TYPES: Final = frozenset({METRIC_TYPE_SCORE, METRIC_TYPE_CATEGORICAL, METRIC_TYPE_BOOLEAN})

#: Marks a payload cut at the size cap (``OTEL_EXPERIMENTS_MAX_PAYLOAD_CHARS``).
TRUNCATION_MARKER: Final = "...[truncated]"

"""Add the processor to a tracer setup you already have: one line.

    python examples/existing_setup.py

Spans print to the console; every span started inside ``start_observe`` (including
spans from other libraries' instrumentation) carries the experiment and identity.
"""

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from otel_experiments import ExperimentSpanProcessor, observe, start_observe

# Your existing setup...
provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
trace.set_tracer_provider(provider)
# ...plus one line:
provider.add_span_processor(ExperimentSpanProcessor())

library_tracer = trace.get_tracer("some.llm.client")  # stands in for any instrumentation


def call_model(prompt: str) -> str:
    with library_tracer.start_as_current_span("llm.completion") as span:
        span.set_attribute("llm.model", "gpt-4o")
        return prompt.upper()


for ticket in ["reset my password", "refund order 42"]:
    with start_observe(
        feature_slug="support-ticket",
        name="analyse_ticket",
        experiment={"id": "exp-456", "name": "Prompt v3"},
        identity={"organization": {"id": "org-1", "name": "Acme"}, "user": {"id": "u-9"}},
    ) as span:
        span.set_input({"ticket": ticket})
        answer = call_model(ticket)
        observe.set_output({"answer": answer})

provider.shutdown()

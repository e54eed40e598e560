"""``@start_observe`` on functions, methods and generators.

    python examples/decorators.py
"""

from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from otel_experiments import Experiment, ExperimentSpanProcessor, observe, start_observe

provider = TracerProvider()
provider.add_span_processor(ExperimentSpanProcessor())
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
trace.set_tracer_provider(provider)

EXPERIMENT = Experiment("exp-456", "Model comparison", "ab-test", "2026-01-04T00:00:00Z")


@start_observe(
    feature_slug="ab-test",
    name="experiment.variant_a",
    experiment=EXPERIMENT,
    identity={"organization": {"id": "123", "name": "ACME"}, "user": {"id": "456"}},
)
def run_variant_a(question: str) -> str:
    # Arguments are recorded as input and the return value as output.
    observe.set_metadata({"model": "gpt-4o", "temperature": 0.2})
    observe.add_metric("helpfulness", 0.9)
    return question[::-1]


class Summarizer:
    @start_observe(feature_slug="ab-test", name="summarize", experiment="exp-456",
                   record_input=False)  # keep large or private inputs out of the span
    def summarize(self, document: str) -> str:
        return document[:20]


@start_observe(feature_slug="ab-test", name="stream_tokens", experiment="exp-456")
def stream_tokens(text: str) -> Iterator[str]:
    yield from text.split()


if __name__ == "__main__":
    print(run_variant_a("what is an experiment?"))
    print(Summarizer().summarize("A long document about experiments and traces."))
    print(list(stream_tokens("one two three")))

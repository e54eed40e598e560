"""An asyncio app: tasks inherit the experiment; each request gets its own scope.

    python examples/async_app.py
"""

import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from otel_experiments import (
    ExperimentSpanProcessor,
    current_experiment,
    experiment_context,
    start_observe,
)

provider = TracerProvider()
provider.add_span_processor(ExperimentSpanProcessor())
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("retriever")


async def retrieve(query: str, shard: int) -> str:
    with tracer.start_as_current_span(f"retrieve.shard{shard}"):
        await asyncio.sleep(0.01)
        return f"{query}@{shard}"


@start_observe(feature_slug="search", name="answer")
async def answer(query: str) -> list[str]:
    # asyncio.gather creates tasks; each copies the current context, experiment included.
    return list(await asyncio.gather(*(retrieve(query, s) for s in range(3))))


async def handle_request(user_id: str, variant: str, query: str) -> list[str]:
    # What a middleware does: attach the request's experiment and identity, no span.
    with experiment_context(f"exp-search-{variant}", identity={"user": {"id": user_id}}):
        assert current_experiment() is not None
        return await answer(query)


async def main() -> None:
    results = await asyncio.gather(
        handle_request("u-1", "a", "cats"), handle_request("u-2", "b", "dogs")
    )
    print(results)


if __name__ == "__main__":
    asyncio.run(main())

"""A small support-ticket triage app, instrumented the way a real one would be.

Two variants of the classifier run as two experiments over the same tickets; every
ticket is one ``start_observe`` unit of work with nested spans from other "libraries"
(a retriever and an LLM client), and evaluations recorded with ``observe.add_metric``.
Run ``run_experiment(experiment, classify)`` for each of ``VARIANTS``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from opentelemetry import trace

from otel_experiments import TraceExperiment, observe, start_observe

retriever = trace.get_tracer("demo.retriever")
llm = trace.get_tracer("demo.llm")

#: (ticket text, expected category, organization, user)
TICKETS: list[tuple[str, str, str, str]] = [
    ("I was charged twice for my subscription", "billing", "acme", "u-1"),
    ("Please refund my last invoice", "billing", "acme", "u-2"),
    ("Can I get a receipt for March?", "billing", "globex", "u-3"),
    ("My credit card payment failed", "billing", "globex", "u-4"),
    ("How do I change the plan price?", "billing", "initech", "u-5"),
    ("I forgot my password", "account", "acme", "u-1"),
    ("Please delete my account", "account", "initech", "u-6"),
    ("I cannot log in since yesterday", "account", "globex", "u-3"),
    ("Change the email address on my profile", "account", "acme", "u-7"),
    ("Two-factor code never arrives", "account", "initech", "u-5"),
    ("The export button crashes the page", "bug", "acme", "u-2"),
    ("Error 500 when I upload a file", "bug", "globex", "u-4"),
    ("The dashboard is blank on Safari", "bug", "initech", "u-6"),
    ("Search returns results from other projects", "bug", "acme", "u-7"),
    ("App freezes after the latest update", "bug", "globex", "u-8"),
    ("Do you have an office in Lisbon?", "other", "initech", "u-9"),
    ("Great product, thanks!", "other", "acme", "u-1"),
    ("Can we schedule a demo for my team?", "other", "globex", "u-8"),
    ("", "other", "acme", "u-2"),  # an empty ticket: the naive variant fails on it
    ("Where can I find your API documentation?", "other", "initech", "u-9"),
]

KEYWORDS_V1 = {
    "billing": ("charged", "refund", "invoice"),
    "account": ("password", "log in"),
    "bug": ("crash", "error"),
}
KEYWORDS_V2 = {
    "billing": ("charged", "refund", "invoice", "receipt", "payment", "price"),
    "account": ("password", "log in", "account", "email", "two-factor", "profile"),
    "bug": ("crash", "error", "blank"),
}


def _retrieve(text: str) -> list[str]:
    with retriever.start_as_current_span("retrieve_similar_tickets") as span:
        span.set_attribute("retrieval.top_k", 3)
        time.sleep(random.uniform(0.001, 0.004))
        return [w for w in text.lower().split() if len(w) > 4][:3]


def _complete(prompt: str, keywords: dict[str, tuple[str, ...]]) -> tuple[str, float]:
    with llm.start_as_current_span("llm.completion") as span:
        span.set_attribute("gen_ai.request.model", "keyword-matcher")
        time.sleep(random.uniform(0.002, 0.008))
        if not prompt:
            raise ValueError("empty ticket: nothing to classify")
        text = prompt.lower()
        for category, words in keywords.items():
            hits = sum(word in text for word in words)
            if hits:
                return category, min(1.0, 0.6 + 0.2 * hits)
        return "other", 0.5


def make_classifier(keywords: dict[str, tuple[str, ...]], *, handle_empty: bool) -> Callable[[str], str]:
    def classify(text: str) -> str:
        _retrieve(text)
        if handle_empty and not text.strip():
            observe.add_metric("confidence", 1.0)
            return "other"
        category, confidence = _complete(text, keywords)
        observe.add_metric("confidence", confidence)
        return category

    return classify


VARIANTS = {
    TraceExperiment("triage-keywords-v1", "Triage: keywords v1", "support-triage"):
        make_classifier(KEYWORDS_V1, handle_empty=False),
    TraceExperiment("triage-keywords-v2", "Triage: keywords v2", "support-triage"):
        make_classifier(KEYWORDS_V2, handle_empty=True),
}


def run_experiment(experiment: TraceExperiment, classify: Callable[[str], str]) -> int:
    """Run every ticket under ``experiment``; returns how many were classified correctly."""
    correct = 0
    for text, expected, org, user in TICKETS:
        try:
            with start_observe(
                "support-triage",
                "triage_ticket",
                experiment=experiment,
                identity={"organization": {"id": org}, "user": {"id": user}},
            ) as span:
                span.set_input({"ticket": text})
                span.set_expected_output(expected)
                category = classify(text)
                span.set_output(category)
                span.add_metric("correct", category == expected)
                span.add_metric("category", category)
                correct += category == expected
        except ValueError:
            pass  # recorded on the span as an error; the run goes on
    return correct


if __name__ == "__main__":
    import otel_experiments

    # Against the local server (`otel-experiments serve`) or $OTEL_EXPERIMENTS_ENDPOINT.
    handle = otel_experiments.configure()
    for experiment, classify in VARIANTS.items():
        correct = run_experiment(experiment, classify)
        print(f"ran {experiment.id}: {correct}/{len(TICKETS)} tickets correct")
    handle.shutdown()

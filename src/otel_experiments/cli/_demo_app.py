"""The app ``otel-experiments demo`` evaluates: a support-ticket classifier, two variants.

Each classification makes the spans a real app would (a retriever, an LLM call), records a
confidence metric with ``observe.add_metric``, and the naive variant fails on an empty
ticket, so the demo shows failures, metrics and nested spans.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from ..observation.span import observe

_retriever = trace.get_tracer("demo.retriever")
_llm = trace.get_tracer("demo.llm")

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
    "bug": ("crash", "error", "blank", "freeze"),
}


def records() -> list[dict[str, Any]]:
    return [{"input": {"ticket": text}, "expected_output": category,
             "metadata": {"organization": org, "user": user}}
            for text, category, org, user in TICKETS]


def make_classifier(keywords: dict[str, tuple[str, ...]], *,
                    handle_empty: bool) -> Callable[[dict[str, str]], str]:
    # The "prompt" lists every keyword: its size is the variant's input-token cost.
    prompt_tokens = sum(len(words) for words in keywords.values())

    def classify(input: dict[str, str]) -> str:
        text = input["ticket"]
        with _retriever.start_as_current_span("retrieve_similar_tickets") as span:
            span.set_attribute("retrieval.top_k", 3)
            time.sleep(random.uniform(0.001, 0.003))
        if handle_empty and not text.strip():
            observe.add_metric("confidence", 1.0)
            return "other"
        with _llm.start_as_current_span("llm.completion") as span:
            span.set_attribute("gen_ai.request.model", "keyword-matcher")
            # GenAI usage as an LLM client reports it, so the pages show tokens (and cost,
            # with a price table) per variant: words of the ticket plus the prompt.
            span.set_attribute("gen_ai.usage.input_tokens", prompt_tokens + len(text.split()))
            span.set_attribute("gen_ai.usage.output_tokens", 1)
            time.sleep(random.uniform(0.002, 0.006))
            if not text:
                raise ValueError("empty ticket: nothing to classify")
            lowered = text.lower()
            for category, words in keywords.items():
                hits = sum(word in lowered for word in words)
                if hits:
                    observe.add_metric("confidence", min(1.0, 0.6 + 0.2 * hits))
                    return category
            observe.add_metric("confidence", 0.5)
            return "other"

    classify.__name__ = "classify_ticket"
    return classify


VARIANTS = {
    "triage-keywords-v1": (make_classifier(KEYWORDS_V1, handle_empty=False), {"keywords": 1}),
    "triage-keywords-v2": (make_classifier(KEYWORDS_V2, handle_empty=True), {"keywords": 2}),
}

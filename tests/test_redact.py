"""Redaction rules (pure) and baggage: what is masked, what is left alone."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import baggage
from opentelemetry.context import Context

from otel_experiments import settings as config
from otel_experiments.context.baggage import with_baggage
from otel_experiments.context.scope import ExperimentScope
from otel_experiments.events.redact import MASK, Redactor
from otel_experiments.models import Identity, Organization, TraceExperiment, User


def event() -> dict[str, Any]:
    return {
        "name": "span",
        "tags": ["service.name:svc", "user.id:u-1", "user.name:Bob", "organization.name:Acme"],
        "meta": {
            "input": {"q": "hi", "password": "pw", "messages": [{"email": "x@y"}, {"ok": 1}]},
            "output": "out",
            "metadata": {"a": {"token": "t"}, "b": {"token": "t2", "keep": True}},
        },
    }


def test_keys_paths_and_hash() -> None:
    r = Redactor(["user.name", "password", "$.meta.metadata.*.token", "$..email",
                  "$.meta.input.messages[1]"], hash_key="s" * 16)
    metrics = [{"label": "m", "metadata": {"password": "x", "n": 1}}]
    out = r(event(), metrics)
    assert out is not None
    assert "user.name:" + MASK in out["tags"] and "organization.name:Acme" in out["tags"]
    assert f"user.id:{r.pseudonym('u-1')}" in out["tags"] and len(r.pseudonym("u-1")) == 64
    assert out["meta"]["input"] == {"q": "hi", "password": MASK,
                                    "messages": [{"email": MASK}, MASK]}
    assert out["meta"]["metadata"] == {"a": {"token": MASK}, "b": {"token": MASK, "keep": True}}
    assert out["meta"]["output"] == "out"
    assert metrics[0]["metadata"] == {"password": MASK, "n": 1}


def test_payload_keys_mask_the_whole_payload_and_bad_paths_are_reported() -> None:
    r = Redactor(["output.value", "$.meta[", "$."])
    out = r(event(), [])
    assert out is not None and out["meta"]["output"] == MASK
    assert r.invalid == ["$.meta[", "$."]
    assert not Redactor([])  # nothing to do: the exporter skips it


def test_the_hook_runs_last_and_a_bad_return_raises() -> None:
    seen: list[str] = []
    r = Redactor(["password"], hook=lambda e: seen.append(e["meta"]["input"]["password"]) or e)
    r(event(), [])
    assert seen == [MASK]
    with pytest.raises(TypeError):
        Redactor(hook=lambda e: "nope")(event(), [])  # type: ignore[arg-type,return-value]


def test_redacted_keys_stay_out_of_outgoing_baggage(monkeypatch: pytest.MonkeyPatch) -> None:
    scope = ExperimentScope.build(
        TraceExperiment("exp-1", "Secret name"),
        Identity(Organization("org-1", "Acme"), User("u-1", "Bob")),
    )
    ctx = with_baggage(Context(), scope, names=True)
    assert baggage.get_baggage("user.name", ctx) == "Bob"
    monkeypatch.setenv(config.OTEL_EXPERIMENTS_REDACT, "user.name,experiment.name,$.name")
    config.reload()
    ctx = with_baggage(Context(), scope, names=True)
    entries = baggage.get_all(ctx)
    assert "user.name" not in entries and "experiment.name" not in entries
    assert entries["organization.name"] == "Acme" and entries["user.id"] == "u-1"

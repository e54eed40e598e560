"""Redaction against the real server: masked values never arrive, the rest does."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from server_helpers import API, uid

import otel_experiments
from otel_experiments import settings as config
from server_process import ServerProcess

HASH_KEY = "k" * 32


def test_masked_values_never_reach_the_server(
    sqlite_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(config.OTEL_EXPERIMENTS_REDACT,
                       "user.name, password, $.meta.metadata.*.token, $..email")
    monkeypatch.setenv(config.OTEL_EXPERIMENTS_HASH_USER_IDS_KEY, HASH_KEY)

    def hook(event: dict[str, Any]) -> dict[str, Any] | None:
        if event["name"] == "internal":
            return None
        if isinstance(event["meta"].get("output"), str):
            event["meta"]["output"] = event["meta"]["output"].replace("4111-1111", "[CARD]")
        return event

    exp_id = uid("exp")
    provider = TracerProvider()
    handle = otel_experiments.configure(tracer_provider=provider, endpoint=sqlite_server.base_url,
                                        redact=hook, default_experiment=None)
    identity = {"user": {"id": "alice-42", "name": "Alice Secret"},
                "organization": {"id": "org-1", "name": "Acme"}}
    try:
        for name in ("task", "internal"):
            with otel_experiments.start_observe("slug", name, experiment=exp_id,
                                                identity=identity, tracer_provider=provider):
                obs = otel_experiments.observe
                obs.set_input({"question": "keep-this", "password": "hunter2",
                               "profile": {"email": "a@example.com", "city": "Paris"}})
                obs.set_output("card 4111-1111 approved")
                obs.set_metadata({"run": {"token": "tok-123", "model": "m1"}})
    finally:
        handle.shutdown()
    report = handle.delivery_report()
    assert report.dropped_by_reason == {"redacted": 1}  # the "internal" span
    with httpx.Client(base_url=sqlite_server.base_url, timeout=10) as client:
        page = client.get(f"{API}/experiments/{exp_id}/events?page[size]=50").json()
    text = json.dumps(page)
    for secret in ("Alice Secret", "hunter2", "tok-123", "a@example.com", "4111-1111",
                   "alice-42"):
        assert secret not in text, secret
    for kept in ("keep-this", "Paris", "m1", "[CARD]", "Acme", "org-1", "[REDACTED]"):
        assert kept in text, kept
    pseudonym = hmac.new(HASH_KEY.encode(), b"alice-42", hashlib.sha256).hexdigest()
    assert pseudonym in text
    names = sorted(item["attributes"]["name"] for item in page["data"])
    assert "internal" not in names and report.delivered == len(names)

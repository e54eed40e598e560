"""The delivery rules: one verdict per class of answer (export/rules.py states them)."""

from __future__ import annotations

import pytest

from otel_experiments.export.rules import Verdict, classify, parse_retry_after


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED), (202, Verdict.DELIVERED), (204, Verdict.DELIVERED),
        (301, Verdict.KEEP), (302, Verdict.KEEP), (307, Verdict.KEEP), (308, Verdict.KEEP),
        (400, Verdict.SPLIT), (413, Verdict.SPLIT), (422, Verdict.SPLIT),
        (401, Verdict.KEEP), (403, Verdict.KEEP),
        (404, Verdict.DROP), (405, Verdict.DROP), (409, Verdict.DROP), (410, Verdict.DROP),
        (415, Verdict.DROP), (418, Verdict.DROP),
        (408, Verdict.RETRY), (429, Verdict.RETRY),
        (500, Verdict.RETRY), (502, Verdict.RETRY), (503, Verdict.RETRY), (504, Verdict.RETRY),
        (599, Verdict.RETRY),
        (100, Verdict.DROP), (600, Verdict.DROP),
    ],
)
def test_every_status_class_has_its_verdict(status: int, verdict: Verdict) -> None:
    decision = classify(status, {})
    assert decision.verdict is verdict
    assert str(status) in decision.reason


def test_retry_after_is_read_only_for_retries() -> None:
    assert classify(429, {"retry-after": "7"}).retry_after == 7.0
    assert classify(503, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}).retry_after == 0.0
    assert classify(503, {}).retry_after is None
    assert classify(400, {"retry-after": "7"}).retry_after is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), (" 1.5 ", 1.5), ("-2", 0.0), ("", None), (None, None), ("soon", None),
     ("nan", None), ("inf", None)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_http_date_retry_after_is_relative_to_now() -> None:
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", now=0.0) == 60.0

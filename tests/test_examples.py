"""The examples in examples/ run as a newcomer would run them, and do what they say."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def console_spans(output: str) -> list[dict[str, object]]:
    """Parse the ConsoleSpanExporter's pretty-printed JSON documents."""
    decoder, spans, pos = json.JSONDecoder(), [], 0
    while (start := output.find("{\n", pos)) != -1:
        try:
            doc, end = decoder.raw_decode(output, start)
        except json.JSONDecodeError:
            pos = start + 1
            continue
        if isinstance(doc, dict) and "context" in doc:
            spans.append(doc)
        pos = end
    return spans


@pytest.mark.parametrize(
    ("script", "expected_spans"),
    [("existing_setup.py", 4), ("decorators.py", 3), ("async_app.py", 8)],
)
def test_console_examples_stamp_every_span(script: str, expected_spans: int) -> None:
    out = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    spans = console_spans(out)
    assert len(spans) == expected_spans
    for span in spans:
        attrs = span["attributes"]
        assert isinstance(attrs, dict)
        assert re.fullmatch(r"exp-[\w-]+", str(attrs["experiment.id"])), span["name"]

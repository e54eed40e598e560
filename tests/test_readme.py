"""The README's Quick start, run exactly as written, against the real local server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from server_process import ServerProcess

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start_code() -> str:
    text = README.read_text()
    section = text[text.index("## Quick start"):text.index("## API")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


def test_quick_start_runs_and_its_events_reach_the_server(tmp_path: Path) -> None:
    script = tmp_path / "quick_start.py"
    script.write_text(quick_start_code())
    with ServerProcess(f"sqlite:///{tmp_path / 'x.db'}", log_dir=tmp_path) as server:
        env = {**os.environ, "OTEL_EXPERIMENTS_ENDPOINT": server.base_url}
        subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=60,
                       capture_output=True)
        reply = httpx.get(
            f"{server.base_url}/api/v2/llm-obs/v1/experiments/exp-456/events", timeout=10
        )
        reply.raise_for_status()
    spans = {span["attributes"]["name"]: span["attributes"] for span in reply.json()["data"]}
    assert set(spans) == {"answer-question", "llm.completion", "answer"}
    for span in spans.values():
        assert "experiment.id:exp-456" in span["tags"]
        assert "user.id:u-9" in span["tags"] or span["name"] == "answer"
    root = spans["answer-question"]
    assert root["meta"]["input"] == {"q": "What is an experiment?"}
    assert root["meta"]["output"] == "A controlled comparison."
    assert spans["llm.completion"]["parent_id"] == root["span_id"]
    labels = {m["label"] for s in spans.values() for m in s.get("metrics", [])}
    assert labels == {"helpfulness", "correct"}

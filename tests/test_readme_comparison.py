"""The README's comparison table is what examples/significance.py prints, run for real
against the local server (the example is seeded, so its output is the same every time)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[1]


def test_readme_table_is_the_example_output(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Comparisons you can trust"):]
    shown = re.search(r"```text\n(.*?)```", section, re.DOTALL)
    assert shown is not None
    with ServerProcess(f"sqlite:///{tmp_path / 'x.db'}", log_dir=tmp_path) as server:
        done = subprocess.run([sys.executable, str(ROOT / "examples" / "significance.py")],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "OTEL_EXPERIMENTS_ENDPOINT": server.base_url})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == shown.group(1).strip()
    assert "| correct | 100 | 0.6933 | 0.8467 |" in done.stdout and "| improved |" in done.stdout

"""`make demo` end to end: real server subprocess, real app, summaries read back."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def test_demo_runs_both_experiments_and_prints_where_to_look(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO), "--no-serve", "--data-dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # what the app counted locally ...
    local = dict(re.findall(r"ran (\S+): (\d+)/20 tickets correct", out))
    assert set(local) == {"triage-keywords-v1", "triage-keywords-v2"}
    # ... equals what the server aggregated from the exported metrics
    for exp_id, correct in local.items():
        row = re.search(rf"^{exp_id}\s+(\d+)\s+(\d+)%", out, re.MULTILINE)
        assert row is not None, out
        assert int(row.group(1)) == 20
        assert int(row.group(2)) == round(100 * int(correct) / 20)
    assert "/experiments/triage-keywords-v2/summary" in out
    assert (tmp_path / "demo" / "experiments.db").exists()

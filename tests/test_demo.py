"""`make demo` (`otel-experiments demo`) end to end: real server subprocess, a dataset, two
variants run with the runner, the comparison read back from the server, the gate."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path


def test_demo_runs_both_variants_compares_and_gates(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "otel_experiments.cli", "demo", "--no-serve", "--data-dir",
         str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 60  # bounded: the target is ~30 s on a loaded box
    out = result.stdout
    # what the runner counted locally ...
    local = {name: (int(ok), int(n)) for name, ok, n in
             re.findall(r"ran (\S+): (\d+)/(\d+) tickets correct", out)}
    assert set(local) == {"triage-keywords-v1", "triage-keywords-v2"}
    assert all(n == 20 for _, n in local.values())
    # ... equals what the comparison read back from the server (accuracy over all records)
    row = re.search(r"^accuracy\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", out, re.MULTILINE)
    assert row is not None, out
    assert float(row.group(1)) == local["triage-keywords-v1"][0] / 20
    assert float(row.group(2)) == local["triage-keywords-v2"][0] / 20
    assert row.group(4) == "triage-keywords-v2"
    assert "winner: triage-keywords-v2" in out
    assert re.search(r"^PASS\s+correct >= 0.8", out, re.MULTILINE)
    assert "\nPASSED" in out and "spans: " in out
    assert "/records" in out
    assert (tmp_path / "demo" / "experiments.db").exists()

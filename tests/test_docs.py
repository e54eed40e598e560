"""The docs stay true: every variable and every core module is documented."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "otel_experiments"


def test_every_environment_variable_read_by_the_package_is_in_configuration_md() -> None:
    declared: set[str] = set()
    for path in SRC.rglob("*.py"):
        declared |= set(re.findall(r'^\s*OTEL_[A-Z_]+: Final = "(OTEL_[A-Z_]+)"', path.read_text(),
                                   re.MULTILINE))
    assert "OTEL_EXPERIMENTS_DATABASE_URL" in declared  # the server's variables are found too
    table = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `(OTEL_[A-Z_]+)` \|", table, re.MULTILINE))
    assert declared - documented == set()


def test_architecture_lists_every_core_module() -> None:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    modules = {p.name for p in SRC.glob("*.py") if p.name != "__init__.py"}
    modules |= {p.name + "/" for p in SRC.iterdir() if p.is_dir() and p.name != "__pycache__"}
    missing = {m for m in modules if f"`{m}`" not in text}
    assert missing == set()

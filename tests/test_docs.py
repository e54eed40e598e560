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


def test_architecture_names_every_core_module_once() -> None:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]
    modules = {
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
        if p.name != "__init__.py" and p.parts[len(SRC.parts)] not in ("server", "events")
    }
    modules |= {"events/", "server/"}
    for module in sorted(modules):
        rows = [row for row in table if f"| `{module}` |" in row]
        assert len(rows) == 1, f"{module}: named in {len(rows)} rows of the module table"


def test_the_delivery_rules_table_matches_classify() -> None:
    from otel_experiments.export.rules import classify

    text = (ROOT / "docs" / "configuration.md").read_text()
    section = text[text.index("### Delivery guarantees"):]
    rows = re.findall(r"^\| ([^|]+) \| (delivered|retry|keep|split|drop) \|", section, re.MULTILINE)
    assert len(rows) == 7
    checked = 0
    for answer, verdict in rows:
        for code in re.findall(r"\b([1-5]\d\d|[1-5]xx)\b", answer):
            status = int(code.replace("xx", "00")) if "xx" in code else int(code)
            if "xx" in code:
                status += 4  # a member of the class no other row names
            assert classify(status).verdict.value == ("delivered" if verdict == "delivered"
                                                      else verdict), (answer, code)
            checked += 1
    assert checked >= 10

"""Imports point down: a module imports only from its own layer and the layers below.

The layers are those of docs/ARCHITECTURE.md; the check reads every module's imports
(including those inside functions and under TYPE_CHECKING).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "otel_experiments"

#: top-level module or package -> layer (higher imports lower, never the reverse)
LAYERS: dict[str, int] = {
    "attributes": 0, "_compat": 0, "_runtime": 0,
    "models": 1, "settings": 1, "events": 1, "outcomes": 1, "stats": 1, "pricing": 1,
    "context": 2,
    "observation": 3,
    "export": 4,
    "sdk": 5,
    "client": 6, "server": 6,
    "runner": 7,
    "cli": 8,
    "__version__": 0,  # a constant of the package root, importable from anywhere
}


def _unit(module: str) -> str:
    """``otel_experiments.context.scope`` -> ``context``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[str]:
    package = ".".join(("otel_experiments", *path.relative_to(SRC).with_suffix("").parts))
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + ".__init__"
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: -node.level]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names = [f"{module}.{alias.name}" for alias in node.names]
            found.extend(names if module == "otel_experiments" else [module])
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [name for name in found if name.startswith("otel_experiments.")]


def _modules() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if p != SRC / "__init__.py"]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    own = path.relative_to(SRC).parts[0].removesuffix(".py")
    assert own in LAYERS, f"{own} has no layer: add it to LAYERS and docs/ARCHITECTURE.md"
    for imported in _imports(path):
        target = _unit(imported)
        assert target in LAYERS, f"{path.name} imports {imported}, which has no layer"
        assert LAYERS[target] <= LAYERS[own], (
            f"{path.relative_to(SRC)} (layer {LAYERS[own]}) imports {imported} "
            f"(layer {LAYERS[target]}): imports must point down"
        )


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The rule is not vacuous: the real context layer does import from below it."""
    imports = _imports(SRC / "context" / "active.py")
    assert "otel_experiments.settings" in imports
    assert all(LAYERS[_unit(name)] <= LAYERS["context"] for name in imports)
    assert LAYERS["export"] > LAYERS["context"]  # so export -> context would be caught


def test_public_api_is_declared_once_and_lazy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, otel_experiments as oe\n"
        "assert 'httpx' not in sys.modules and 'opentelemetry.sdk' not in sys.modules\n"
        "assert sorted(oe.__all__) == sorted(['__version__', *oe._EXPORTS])\n"
        "for name in oe._EXPORTS: getattr(oe, name)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr

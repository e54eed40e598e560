"""A newcomer without a checkout: the built wheel, a fresh venv, the README's pip path.

Offline: the wheel is built with the dev environment's setuptools, and the fresh venv
borrows the dev environment's dependencies (a ``.pth`` line) instead of downloading them;
the package itself comes only from the wheel.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str | Path, timeout: float = 180) -> str:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL, check=False, cwd="/")
    assert result.returncode == 0, f"{cmd}: {result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("pip")
    # a copy of what a clone holds: a checkout's build/ or egg-info must not leak in
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".otel-experiments", "build", "dist", "*.egg-info", "__pycache__",
        ".*_cache", "tests", "*.so"))
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", work / "dist", source)
    (wheel,) = (work / "dist").glob("otel_experiments-*.whl")
    venv = work / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    site = Path(subprocess.run(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    (site / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
         "--no-deps", "--no-index", "-q", wheel)
    return venv


def test_the_wheel_is_what_runs(fresh_venv: Path) -> None:
    where = _run(fresh_venv / "bin" / "python", "-c",
                 "import otel_experiments, os; print(otel_experiments.__file__)")
    assert str(fresh_venv) in where and str(ROOT / "src") not in where
    # what the wheel must carry besides code
    files = _run(fresh_venv / "bin" / "python", "-c",
                 "import importlib.resources as r, otel_experiments as o;"
                 "print(sorted(p.name for p in r.files(o).iterdir()))")
    assert "py.typed" in files
    # the C encoder was compiled into the wheel (setup.py) and is the one in use
    native = _run(fresh_venv / "bin" / "python", "-c",
                  "from otel_experiments.events import native; print(native.NATIVE, "
                  "native._speedups.__file__)")
    assert native.startswith("True ") and str(fresh_venv) in native


def test_readme_pip_path(fresh_venv: Path, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"\*\*Without a checkout\*\* \(pip\):\n\n```bash\n(.*?)```", readme, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands[0].startswith("pip install 'otel-experiments[")
    assert "otel-experiments demo" in commands and "otel-experiments serve" in commands
    cli = fresh_venv / "bin" / "otel-experiments"
    assert _run(cli, "--version").startswith("otel-experiments ")
    out = _run(cli, "demo", "--no-serve", "--data-dir", tmp_path / "demo", timeout=240)
    assert "winner:" in out and "PASSED" in out
    assert "usage: otel-experiments serve" in _run(cli, "serve", "--help")


def test_without_a_c_compiler_the_wheel_installs_and_encodes_in_python(tmp_path: Path) -> None:
    """The C encoder is optional: a machine without a compiler gets a working package."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".otel-experiments", "build", "dist", "*.egg-info", "__pycache__",
        ".*_cache", "tests", "*.so"))
    env_cmd = ["env", "CC=/bin/false"]
    _run(*env_cmd, sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", "-w", tmp_path / "dist", source)
    (wheel,) = (tmp_path / "dist").glob("otel_experiments-*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    site = Path(_run(venv / "bin" / "python", "-c",
                     "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (site / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
         "--no-deps", "--no-index", "-q", wheel)
    out = _run(venv / "bin" / "python", "-c", """
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_experiments.events import native, spans_to_event_bodies, dumps
from otel_experiments.events.shapes import DEFAULT_KEPT
memory = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(memory))
with provider.get_tracer("t").start_as_current_span("s", attributes={"experiment.id": "e1"}):
    pass
spans = memory.get_finished_spans()
groups, lost = native.encode_span_groups(spans, DEFAULT_KEPT)
body = spans_to_event_bodies(spans)["e1"]["data"]["attributes"]["spans"][0]
print(native.NATIVE, native._speedups, lost, groups["e1"][0][0] == dumps(body))
""")
    assert out.split() == ["False", "None", "0", "True"]

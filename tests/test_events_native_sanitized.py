"""The C encoder's tests again, with the encoder built under AddressSanitizer and
UndefinedBehaviorSanitizer: an out-of-bounds write, a use after free or undefined
arithmetic that happens not to change the bytes fails here instead of passing by luck.

The sanitized build goes into a copy of the package (its .so only) and a child pytest
runs ``test_events_native.py`` and ``test_events_compact_json.py`` against it, with every
allocation through malloc (``PYTHONMALLOC=malloc``) so the sanitizer sees them all.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "otel_experiments"


def _runtime(cc: str, name: str) -> str | None:
    found = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True, text=True,
                           check=False).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


@pytest.mark.timeout(600)
def test_the_c_encoder_tests_pass_under_sanitizers(tmp_path: Path) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler here (CI installs one)")
    asan, ubsan = _runtime(cc, "libasan.so"), _runtime(cc, "libubsan.so")
    if asan is None or ubsan is None:
        pytest.skip("the compiler has no sanitizer runtimes")
    copy = tmp_path / "src" / "otel_experiments"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    assert not list(copy.rglob("_speedups*.so"))
    built = copy / "events" / ("_speedups" + importlib.machinery.EXTENSION_SUFFIXES[0])
    compiled = subprocess.run(
        [cc, "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-Wall",
         "-Werror", f"-I{sysconfig.get_paths()['include']}", "-o", str(built),
         *sorted(str(p) for p in (PACKAGE / "events" / "_speedups_src").glob("*.c"))],
        capture_output=True, text=True, check=False)
    assert compiled.returncode == 0, compiled.stderr
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path / "src"),
        "LD_PRELOAD": f"{asan} {ubsan}",
        "PYTHONMALLOC": "malloc",
        # CPython frees little at exit by design: leaks are not what this test is about
        "ASAN_OPTIONS": "detect_leaks=0:exitcode=86",
        "UBSAN_OPTIONS": "print_stacktrace=1",
    }
    check = ("import otel_experiments.events.native as n, sys; "
             f"sys.exit(0 if n._speedups.__file__ == {str(built)!r} else 3)")
    assert subprocess.run([sys.executable, "-c", check], env=env, check=False).returncode == 0
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "tests/test_events_native.py", "tests/test_events_compact_json.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=540, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:]
    assert " passed" in result.stdout

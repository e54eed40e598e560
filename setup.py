"""Build of the optional C part: the events converter's common case
(``src/otel_experiments/events/_speedups_src/``, the module ``events._speedups``).

Everything else is in pyproject.toml. ``optional=True``: without a C compiler the package
still installs and converts every span in Python (same bytes, slower).
"""

import sys
from pathlib import Path

from setuptools import Extension, setup

SOURCES = Path("src/otel_experiments/events/_speedups_src")

setup(
    ext_modules=[
        Extension(
            "otel_experiments.events._speedups",
            sources=sorted(str(p) for p in SOURCES.glob("*.c")),
            depends=sorted(str(p) for p in SOURCES.glob("*.h")),
            # only PyInit__speedups is exported; the units' shared names stay inside
            extra_compile_args=[] if sys.platform == "win32" else ["-fvisibility=hidden"],
            optional=True,
        )
    ]
)

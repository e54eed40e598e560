"""Build of the optional C part: the events converter's common case (events/_speedups.c).

Everything else is in pyproject.toml. ``optional=True``: without a C compiler the package
still installs and converts every span in Python (same bytes, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "otel_experiments.events._speedups",
            sources=["src/otel_experiments/events/_speedups.c"],
            optional=True,
        )
    ]
)

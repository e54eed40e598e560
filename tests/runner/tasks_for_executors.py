"""Module-level tasks (picklable) for process-pool and Dask runs."""

from __future__ import annotations

import os


def square(x: int) -> dict[str, int]:
    if x == 5:
        raise ValueError("five is forbidden")
    return {"value": x * x, "pid": os.getpid()}


async def async_square(x: int) -> dict[str, int]:
    return {"value": x * x, "pid": os.getpid()}


def value_ok(output: dict[str, int], expected_output: int) -> bool:
    return output["value"] == expected_output

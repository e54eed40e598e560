"""A progress bar (rich, on a terminal) or nothing."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any


class Progress:
    """``with Progress(total, title, enabled) as bar: bar.advance(failed=...)``."""

    def __init__(self, total: int, title: str, enabled: bool | None = None) -> None:
        self.total, self.title = total, title
        if enabled is None:
            enabled = sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None
        self.failed = 0
        if enabled and total:
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    TextColumn,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )
                from rich.progress import Progress as RichProgress
            except ImportError:  # the [runner] extra is optional
                return
            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TextColumn("{task.fields[failed]}"),
                                     TimeElapsedColumn(), TimeRemainingColumn(), transient=True,
                                     console=Console(stderr=True))  # stdout is the user's

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self.title, total=self.total, failed="")
        return self

    def advance(self, done: int = 1, *, failed: bool = False) -> None:
        if failed:
            self.failed += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=done,
                             failed=f"{self.failed} failed" if self.failed else "")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()


__all__ = ["Progress"]

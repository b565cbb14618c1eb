"""Progress bars for long work in the Python API (inserts, training data, batch scoring, backfills).

Shown with `rich <https://rich.readthedocs.io>`_ (a dependency already) on standard error when
someone watches: a terminal, or a Jupyter kernel. Silent otherwise (pipelines run by the scheduler,
tests, output piped to a file), and the bar disappears when the work is done (``transient``), so
nothing is left in logs. ``FTI_PROGRESS=0`` turns bars off, ``FTI_PROGRESS=1`` forces them on.
rich is imported only when a bar is shown.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENV = "FTI_PROGRESS"


def enabled() -> bool:
    """Whether bars are shown: ``FTI_PROGRESS`` if set, else when standard error is a terminal
    or the code runs in a Jupyter kernel."""
    setting = os.environ.get(ENV, "").strip().lower()
    if setting in ("0", "false", "no", "off", "never"):
        return False
    if setting in ("1", "true", "yes", "on", "always"):
        return True
    if "ipykernel" in sys.modules:  # a notebook: stderr is a pipe, but a person is watching
        return True
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


class Task:
    """One bar: :meth:`advance` by work done, :meth:`step` to a named stage, :meth:`update` to a
    position. Does nothing when bars are off (``active`` is False)."""

    def __init__(self, progress: Any = None, task: Any = None) -> None:
        self._progress = progress
        self._task = task

    @property
    def active(self) -> bool:
        return self._progress is not None

    def advance(self, amount: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def update(self, completed: float, total: float | None = None) -> None:
        """Set the position (and the total, when it became known)."""
        if self._progress is not None:
            if total is not None:
                self._progress.update(self._task, total=total)
            self._progress.update(self._task, completed=completed)

    def step(self, description: str) -> None:
        """Start the next stage: the description changes and one step is counted."""
        if self._progress is not None:
            self._progress.update(self._task, description=description)
            self._progress.advance(self._task, 1)
            self._progress.refresh()  # a new stage shows at once, not at the next timed refresh


_lock = threading.Lock()
_live: Any = None
"""The rich Progress on screen; work inside work (an insert within batch scoring, also from
another thread) adds its bar to it, because a terminal shows one live display at a time."""


@contextmanager
def task(description: str, total: float | None = None, unit: str = "") -> Iterator[Task]:
    """A bar for the ``with`` block (``total=None``: a spinner with the elapsed time)."""
    global _live
    if not enabled():
        yield Task()
        return
    with _lock:
        outer = _live
        if outer is None:
            _live = outer = _start()
            owner = True
        else:
            owner = False
        handle = outer.add_task(description, total=total, unit=unit)
    try:
        yield Task(outer, handle)
    finally:
        with _lock:
            outer.remove_task(handle)
            if owner:
                outer.stop()
                _live = None


def _start() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    force = os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on", "always")
    console = Console(stderr=True, force_terminal=True if force else None)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    progress.start()
    return progress

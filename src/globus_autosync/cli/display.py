"""What a person sees on a terminal: rich tables and a progress line. Plain text when piped."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from globus_autosync.sources.base import WalkStats

PROGRESS_AFTER = 2.0  # seconds before a scan shows a progress line


class ScanProgress:
    """A transient progress line on stderr, shown only once a scan has taken a few seconds."""

    def __init__(self, label: str, enabled: bool) -> None:
        self.label, self.enabled = label, enabled
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None

    def __call__(self, stats: WalkStats) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            if time.monotonic() - self.started < PROGRESS_AFTER:
                return
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label)
        text = f"{self.label}: {stats.dirs} directories, {stats.files} files scanned"
        self._progress.update(self._task, description=text)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table on stdout."""
    t = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        right = bool(i and rows and _numeric(rows, i))
        # folded at the terminal's width, never cut with an ellipsis
        t.add_column(col, justify="right" if right else "left", overflow="fold")
    for row in rows:
        t.add_row(*row)
    Console().print(t)


def _numeric(rows: Sequence[Sequence[str]], i: int) -> bool:
    return all(r[i].replace(",", "").replace(".", "").isdigit() or r[i] == "-" for r in rows)

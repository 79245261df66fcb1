"""The order in which the local transport works through a batch: copy ahead, flush behind.

Each file is first *staged* (copied to its temporary name, its writeback started) and later
*placed* (fsynced, then renamed to its final name). Staged files gather in a window (at most
``window_files`` files or ``window_bytes`` bytes); a full window is flushed by the ``flusher``
thread while the next one fills: one ``barrier`` (``syncfs`` of the destination's file system:
its dirty data written and one journal commit, instead of one commit per file), then each file
is placed, its own fsync now cheap but still what vouches for its data. A file that failed to
stage has its outcome at once; the others have theirs when placed. With a pool, ``workers``
files are staged at once (and the files of a window placed at once), and staging runs ahead of
the results by twice that many; without one, files are staged in the calling thread.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from globus_autosync.transports.base import DONE, Item, Outcome

if TYPE_CHECKING:  # concurrent.futures is loaded only when a batch is copied (start-up counts)
    from concurrent.futures import Future, ThreadPoolExecutor

_A = TypeVar("_A")
_R = TypeVar("_R")


class Staged(NamedTuple):
    """A file whose bytes are at the destination, not yet durable: ``fd`` is open on it."""

    item: Item
    fd: int
    dst: Path
    tmp: Path | None  # the temporary copy to rename; None: the destination already held it


def _now(fn: Callable[[_A], _R], arg: _A) -> Future[_R]:
    from concurrent.futures import Future

    done: Future[_R] = Future()
    try:
        done.set_result(fn(arg))
    except Exception as err:  # raised by ``result()``, as a pool's future would
        done.set_exception(err)
    return done


class Pipeline:
    """Runs ``stage`` and ``place`` over a batch; ``outcomes`` and ``placed`` hold the results."""

    def __init__(
        self,
        stage: Callable[[Item], Staged | Outcome],
        place: Callable[[Staged], Outcome],
        barrier: Callable[[int], None],
        pool: ThreadPoolExecutor | None,
        flusher: ThreadPoolExecutor,
        workers: int,
        window_files: int,
        window_bytes: int,
    ) -> None:
        self.stage, self.place, self.barrier = stage, place, barrier
        self.pool, self.flusher = pool, flusher
        self.ahead = 2 * workers if pool is not None else 0
        self.window_files, self.window_bytes = max(1, window_files), window_bytes
        self.outcomes: dict[str, Outcome] = {}
        # (relpath, destination path) of each file now under its final name: a few bytes each,
        # where a Staged with its paths would cost a kilobyte or more per file of a large batch
        self.placed: list[tuple[str, str]] = []
        self._staging: deque[tuple[Item, Future[Staged | Outcome]]] = deque()
        self._window: list[Staged] = []
        self._window_size = 0
        self._flushing: tuple[list[Staged], Future[list[Outcome]]] | None = None

    def run(self, items: Sequence[Item]) -> None:
        try:
            for item in items:
                if self.pool is None:
                    self._staging.append((item, _now(self.stage, item)))
                else:
                    self._staging.append((item, self.pool.submit(self.stage, item)))
                while len(self._staging) > self.ahead:
                    self._take_staged()
            while self._staging:
                self._take_staged()
            self._flush_window()
            self._take_flushed()
        finally:
            for staged in self._window:  # only left on an unexpected error: nothing renamed
                with contextlib.suppress(OSError):
                    os.close(staged.fd)

    def _take_staged(self) -> None:
        item, future = self._staging.popleft()
        result = future.result()
        if isinstance(result, Outcome):
            self.outcomes[item.relpath] = result
            return
        self._window.append(result)
        self._window_size += item.size
        if len(self._window) >= self.window_files or self._window_size >= self.window_bytes:
            self._flush_window()

    def _flush_window(self) -> None:
        if not self._window:
            return
        self._take_flushed()  # one window in flight at most: bounded descriptors and memory
        window, self._window, self._window_size = self._window, [], 0
        self._flushing = (window, self.flusher.submit(self._flush, window))

    def _flush(self, window: list[Staged]) -> list[Outcome]:
        if len(window) > 1:
            self.barrier(window[0].fd)
        if self.pool is None or len(window) < 2:
            return [self.place(staged) for staged in window]
        return list(self.pool.map(self.place, window))

    def _take_flushed(self) -> None:
        if self._flushing is None:
            return
        window, future = self._flushing
        self._flushing = None
        for staged, outcome in zip(window, future.result(), strict=True):
            self.outcomes[staged.item.relpath] = outcome
            if outcome.result == DONE:
                self.placed.append((staged.item.relpath, str(staged.dst)))

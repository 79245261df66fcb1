"""The order in which the local transport works through a batch: copy ahead, fsync behind.

Each file is first *staged* (copied to its temporary name, its writeback started) and later
*placed* (fsynced, then renamed to its final name). Placing lags staging by a window of files
and bytes: by the time a file is fsynced, the kernel has long been writing it out, and one
journal commit of the file system covers the many files of the window instead of one each. A
file that failed to stage has its outcome at once; the others have theirs when placed. With a
pool, ``workers`` files are staged or placed at once, and staging runs ahead of the results by
twice that many. Without one (one worker), files are staged in the calling thread and placed by
a ``flusher`` thread, so that the copying never waits for a journal commit.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from globus_autosync.transports.base import DONE, Item, Outcome

_A = TypeVar("_A")
_R = TypeVar("_R")


@dataclass(frozen=True)
class Staged:
    """A file whose bytes are at the destination, not yet durable: ``fd`` is open on it."""

    item: Item
    fd: int
    dst: Path
    tmp: Path | None  # the temporary copy to rename; None: the destination already held it


def _now(fn: Callable[[_A], _R], arg: _A) -> Future[_R]:
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
        pool: ThreadPoolExecutor | None,
        workers: int,
        lag_files: int,
        lag_bytes: int,
        flusher: ThreadPoolExecutor | None = None,
    ) -> None:
        self.stage, self.place, self.pool = stage, place, pool
        self.flusher = flusher if flusher is not None else pool
        self.ahead = 2 * workers if pool is not None else 0
        self.lag_files, self.lag_bytes = max(1, lag_files), lag_bytes
        self.outcomes: dict[str, Outcome] = {}
        # (relpath, destination path) of each file now under its final name: a few bytes each,
        # where a Staged with its paths would cost a kilobyte or more per file of a large batch
        self.placed: list[tuple[str, str]] = []
        self._staging: deque[tuple[Item, Future[Staged | Outcome]]] = deque()
        self._window: deque[Staged] = deque()
        self._window_bytes = 0
        self._placing: deque[tuple[Staged, Future[Outcome]]] = deque()

    @staticmethod
    def _submit(pool: ThreadPoolExecutor | None, fn: Callable[[_A], _R], arg: _A) -> Future[_R]:
        if pool is None:
            return _now(fn, arg)
        return pool.submit(fn, arg)

    def run(self, items: Sequence[Item]) -> None:
        try:
            for item in items:
                self._staging.append((item, self._submit(self.pool, self.stage, item)))
                while len(self._staging) > self.ahead:
                    self._take_staged()
            while self._staging:
                self._take_staged()
            while self._window:
                self._to_place()
            while self._placing:
                self._take_placed()
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
        self._window_bytes += item.size
        while self._window and (
            len(self._window) > self.lag_files or self._window_bytes > self.lag_bytes
        ):
            self._to_place()

    def _to_place(self) -> None:
        staged = self._window.popleft()
        self._window_bytes -= staged.item.size
        self._placing.append((staged, self._submit(self.flusher, self.place, staged)))
        while self._placing and (
            self._placing[0][1].done() or len(self._placing) > self.lag_files
        ):
            self._take_placed()

    def _take_placed(self) -> None:
        staged, future = self._placing.popleft()
        outcome = future.result()
        self.outcomes[staged.item.relpath] = outcome
        if outcome.result == DONE:
            self.placed.append((staged.item.relpath, str(staged.dst)))

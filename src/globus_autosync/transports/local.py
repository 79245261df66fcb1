"""The local transport: a mounted directory.

Each file is copied (inside the kernel where it can be, see ``filecopy``) to a temporary name
beside its destination, given the source's mtime and checked for size; then fsynced and renamed
into place. A destination that already holds the same size and mtime is left alone (its inode
stays the same), which also makes resubmission after a crash cheap. Batches finish inside
``submit``.

The files of a batch go in groups (at most ``_GROUP_FILES`` files or ``_GROUP_BYTES`` bytes),
``job.transfers`` files at a time: every file of a group is written (and its writeback started),
then each one is fsynced and renamed, so that one journal commit of the file system covers many
files instead of one each. When every group is done, each directory that received a name (or a
new subdirectory) is fsynced once, and only then does ``poll`` confirm the batch's files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from globus_autosync.config import Job
from globus_autosync.errors import TransportError
from globus_autosync.transports import filecopy
from globus_autosync.transports.base import (
    DONE,
    FAIL,
    RETRY,
    SKIP,
    Check,
    Item,
    Outcome,
    TaskReport,
)

log = logging.getLogger(__name__)

_GROUP_FILES = 256  # files written before the group is fsynced (each holds a descriptor open)
_GROUP_BYTES = 256 << 20  # and bytes: a group of large files stays within the page cache

_T = TypeVar("_T")
_R = TypeVar("_R")


def temp_name(name: str) -> str:
    """The temporary name a file is written under: hidden, short, the same on every attempt."""
    import hashlib  # here: loading OpenSSL costs a quiet run 2 ms of start-up

    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:16]
    return f".autosync-{digest}.part"


def _error(err: OSError) -> str:
    return err.strerror or str(err)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@dataclass(frozen=True)
class _Staged:
    """A file whose bytes are at the destination, not yet durable: ``fd`` is open on it."""

    item: Item
    fd: int
    dst: Path
    tmp: Path | None  # the temporary copy to rename; None: the destination already held it


def _groups(items: Sequence[Item], max_files: int) -> Iterator[Sequence[Item]]:
    start, size = 0, 0
    for i, item in enumerate(items):
        size += item.size
        if i + 1 - start >= max_files or size >= _GROUP_BYTES:
            yield items[start : i + 1]
            start, size = i + 1, 0
    if start < len(items):
        yield items[start:]


class LocalTransport:
    name = "local"
    max_active = 1
    synchronous = True

    def __init__(self, job: Job) -> None:
        self.source = job.source
        self.destination = Path(job.destination)
        self.transfers = job.transfers
        self._results: dict[str, dict[str, Outcome]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._made: set[str] = set()  # directories that gained a subdirectory in this batch

    def checks(self) -> list[Check]:
        dest = self.destination
        if not dest.is_dir():
            return [Check("destination", False, f"{dest} is not a directory; create or mount it")]
        probe = dest / f".globus-autosync-probe-{os.getpid()}"
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError as err:
            return [Check("destination", False, f"cannot write in {dest}: {_error(err)}")]
        return [Check("destination", True, f"{dest} is writable")]

    def ready(self) -> None:
        if not self.destination.is_dir():
            raise TransportError(
                f"destination {self.destination} is not a directory; create it or mount it"
            )
        if not os.access(self.destination, os.W_OK | os.X_OK):
            raise TransportError(
                f"destination {self.destination} is not writable; check its permissions and "
                "that it is not mounted read-only"
            )

    def new_submission_id(self) -> str:
        return str(uuid.uuid4())

    def submit(self, submission_id: str, label: str, items: Sequence[Item]) -> str:
        self.ready()
        outcomes: dict[str, Outcome] = {}
        placed: list[_Staged] = []
        # each file of a group holds a descriptor until it is fsynced: stay well inside the limit
        max_files = max(1, min(_GROUP_FILES, os.sysconf("SC_OPEN_MAX") // 4))
        with self._workers():
            for group in _groups(items, max_files):
                staged: list[_Staged] = []
                for item, result in zip(group, self._map(self._stage, group), strict=True):
                    if isinstance(result, Outcome):
                        outcomes[item.relpath] = result
                    else:
                        staged.append(result)
                placed += self._place_all(staged, outcomes)
            self._sync_dirs(placed, outcomes)
        self._results[submission_id] = outcomes
        return submission_id

    # -- the steps of a batch, each run by the workers --------------------------------------
    @contextlib.contextmanager
    def _workers(self) -> Iterator[None]:
        self._made = set()
        if self.transfers > 1:
            self._pool = ThreadPoolExecutor(self.transfers, thread_name_prefix="autosync-copy")
        try:
            yield
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def _map(self, fn: Callable[[_T], _R], args: Sequence[_T]) -> list[_R]:
        if self._pool is None or len(args) < 2:
            return [fn(arg) for arg in args]
        return list(self._pool.map(fn, args))

    def _found(self, item: Item, st: os.stat_result | None) -> _Staged | Outcome | None:
        """The destination already holds this file (same size and mtime): left as it is, and
        fsynced with the rest, in case a killed run renamed it there before it was durable."""
        if st is None or not stat.S_ISREG(st.st_mode):
            return None
        if (st.st_size, st.st_mtime_ns) != (item.size, item.mtime_ns):
            return None
        dst = self.destination / item.relpath
        try:
            fd = os.open(dst, os.O_RDONLY)
        except OSError as err:  # not ours to read: as durable as whoever wrote it made it
            log.debug("cannot open %s to fsync it: %s", dst, err)
            return Outcome(DONE)
        return _Staged(item, fd, dst, None)

    def _stage(self, item: Item) -> _Staged | Outcome:
        src = self.source / item.relpath
        dst = self.destination / item.relpath
        tmp = dst.parent / temp_name(dst.name)
        try:
            st: os.stat_result | None = os.stat(dst)
        except OSError:
            st = None
        found = self._found(item, st)
        if found is not None:
            _discard(tmp)  # a torn copy that a killed run left is of no use now
            return found
        try:
            fsrc = os.open(src, os.O_RDONLY)
        except FileNotFoundError:
            _discard(tmp)  # a copy of it that a killed run left half-written is never finished
            return Outcome(SKIP, "vanished before it could be sent")
        except OSError as err:
            # unreadable now (a permission, an I/O error): retried, so that fixing the cause
            # is enough to have it sent
            return Outcome(FAIL, f"cannot read: {_error(err)}")
        try:
            return self._copy(item, fsrc, st, dst, tmp)
        except OSError as err:
            _discard(tmp)
            return Outcome(FAIL, f"cannot write {dst}: {_error(err)}")
        finally:
            os.close(fsrc)

    def _copy(
        self, item: Item, fsrc: int, st: os.stat_result | None, dst: Path, tmp: Path
    ) -> _Staged | Outcome:
        before = os.fstat(fsrc)
        if not stat.S_ISREG(before.st_mode):
            _discard(tmp)
            return Outcome(RETRY, "no longer a regular file")
        if (before.st_size, before.st_mtime_ns) != (item.size, item.mtime_ns):
            _discard(tmp)
            return Outcome(RETRY, "changed since it was scanned")
        if st is not None and stat.S_ISDIR(st.st_mode) and not dst.is_symlink():
            return Outcome(FAIL, f"cannot write {dst}: a directory is in the way")
        self._makedirs(dst.parent)
        fdst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            filecopy.copy_data(fsrc, fdst, item.size)
            after = os.fstat(fsrc)
            if (after.st_size, after.st_mtime_ns) != (item.size, item.mtime_ns):
                os.close(fdst)
                _discard(tmp)
                return Outcome(RETRY, "changed while it was being sent")
            written = os.fstat(fdst).st_size
            if written != item.size:
                os.close(fdst)
                _discard(tmp)
                return Outcome(FAIL, f"destination holds {written} bytes, expected {item.size}")
            os.utime(fdst, ns=(after.st_atime_ns, item.mtime_ns))
            filecopy.start_writeback(fdst)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fdst)
            raise
        return _Staged(item, fdst, dst, tmp)

    def _makedirs(self, path: Path) -> None:
        """``mkdir -p``, noting each directory that gained an entry (fsynced at the end)."""
        if path == self.destination or path.is_dir():
            return
        self._makedirs(path.parent)
        try:
            os.mkdir(path)
        except FileExistsError:
            if not path.is_dir():
                raise
            return  # made by another worker
        self._made.add(str(path.parent))

    def _place(self, staged: _Staged) -> Outcome:
        """fsync the file, then give it its name."""
        try:
            os.fsync(staged.fd)
        except OSError as err:
            if staged.tmp is None:
                return Outcome(FAIL, f"cannot make {staged.dst} durable: {_error(err)}")
            _discard(staged.tmp)
            return Outcome(FAIL, f"cannot write {staged.dst}: {_error(err)}")
        finally:
            os.close(staged.fd)
        if staged.tmp is not None:
            try:
                os.replace(staged.tmp, staged.dst)
            except OSError as err:
                _discard(staged.tmp)
                return Outcome(FAIL, f"cannot write {staged.dst}: {_error(err)}")
        return Outcome(DONE)

    def _place_all(self, staged: list[_Staged], outcomes: dict[str, Outcome]) -> list[_Staged]:
        """fsync and rename the files of a group; answers those now under their names."""
        placed: list[_Staged] = []
        for entry, outcome in zip(staged, self._map(self._place, staged), strict=True):
            outcomes[entry.item.relpath] = outcome
            if outcome.result == DONE:
                placed.append(entry)
        return placed

    def _sync_dirs(self, placed: list[_Staged], outcomes: dict[str, Outcome]) -> None:
        """fsync once each directory that holds a new name; its files fail if it cannot be."""
        dirs: dict[str, list[str]] = {d: [] for d in sorted(self._made)}
        for entry in placed:
            dirs.setdefault(str(entry.dst.parent), []).append(entry.item.relpath)
        names = list(dirs)
        for directory, error in zip(names, self._map(_sync_dir, names), strict=True):
            if error is None:
                continue
            log.warning("cannot make the names in %s durable: %s", directory, error)
            for rel in dirs[directory]:
                outcomes[rel] = Outcome(FAIL, f"cannot make {directory} durable: {error}")

    def poll(self, task_id: str, items: Sequence[Item], submitted_at: float) -> TaskReport:
        known = self._results.pop(task_id, None)
        if known is not None:
            return TaskReport(True, known, state="SUCCEEDED")
        # A batch of an interrupted run: what reached the destination intact is confirmed,
        # once it is durable.
        outcomes: dict[str, Outcome] = {}
        with self._workers():
            found = self._map(self._found_now, items)
            staged: list[_Staged] = []
            for item, result in zip(items, found, strict=True):
                if result is None:
                    outcomes[item.relpath] = Outcome(RETRY, "interrupted")
                elif isinstance(result, Outcome):
                    outcomes[item.relpath] = result
                else:
                    staged.append(result)
            self._sync_dirs(self._place_all(staged, outcomes), outcomes)
        if all(o.result == DONE for o in outcomes.values()):
            return TaskReport(True, outcomes, state="SUCCEEDED")
        return TaskReport(True, outcomes, reason="interrupted", state="INTERRUPTED")

    def _found_now(self, item: Item) -> _Staged | Outcome | None:
        try:
            st = os.stat(self.destination / item.relpath)
        except OSError:
            return None
        return self._found(item, st)

    def mkdirs(self, relpaths: Sequence[str]) -> dict[str, str]:
        errors: dict[str, str] = {}
        self._made = set()
        for rel in relpaths:
            try:
                self._makedirs(self.destination / rel)
            except OSError as err:
                errors[rel] = _error(err)
        for directory in sorted(self._made):
            error = _sync_dir(directory)
            if error is not None:
                log.warning("cannot make the names in %s durable: %s", directory, error)
        return errors

    def task_url(self, task_id: str) -> str | None:
        return None

    def close(self) -> None:
        self._results.clear()


def _sync_dir(directory: str) -> str | None:
    try:
        filecopy.fsync_directory(directory)
    except OSError as err:
        return _error(err)
    return None

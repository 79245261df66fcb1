"""The local transport: a mounted directory.

Each file is copied (inside the kernel where it can be, see ``filecopy``) to a temporary name
beside its destination, given the source's mtime and checked for size; then fsynced and renamed
into place. A destination that already holds the same size and mtime is left alone (its inode
stays the same), which also makes resubmission after a crash cheap. Batches finish inside
``submit``.

A batch goes through ``pipeline``: ``job.transfers`` files at a time are copied (and their
writeback started); a window of copied files at a time is flushed (one ``syncfs``, so that one
journal commit of the file system covers the window instead of one commit per file), then each
of its files is fsynced and renamed. When every file is placed, each directory that received a
name (or a new subdirectory) is fsynced once, and only then does ``poll`` confirm the batch's
files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from globus_autosync.config import Job
from globus_autosync.errors import TransportError
from globus_autosync.store import heartbeats
from globus_autosync.transports.base import (
    DONE,
    FAIL,
    RETRY,
    SKIP,
    Check,
    Copy,
    Held,
    Item,
    Outcome,
    TaskReport,
)
from globus_autosync.transports.local import filecopy
from globus_autosync.transports.local.copies import held_in
from globus_autosync.transports.local.pipeline import Pipeline, Staged

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

_DONE = Outcome(DONE)  # one for every confirmed file of a batch (frozen: safe to share)

_WINDOW_FILES = 256  # files copied before a flush (each holds a descriptor until it is placed)
_WINDOW_BYTES = 128 << 20  # and bytes

_T = TypeVar("_T")
_R = TypeVar("_R")


def temp_name(name: str) -> str:
    """The temporary name a file is written under: hidden, short, the same on every attempt."""
    import hashlib  # here: loading OpenSSL costs a quiet run 2 ms of start-up

    digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f".autosync-{digest}.part"


def _error(err: OSError) -> str:
    return err.strerror or str(err)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class LocalTransport:
    name = "local"
    max_active = 1
    synchronous = True

    def __init__(self, job: Job) -> None:
        self.source = job.source
        self.destination = Path(job.destination)
        self.transfers = job.transfers
        self._results: dict[str, dict[str, Outcome]] = {}
        self._pool: ThreadPoolExecutor | None = None  # the copying workers (transfers > 1)
        self._flusher: ThreadPoolExecutor | None = None  # flushes windows of copied files
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
        heartbeats.beat(heartbeats.DESTINATION)  # if it hangs now, the destination does
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
        with self._workers():
            pipeline = self._pipeline(self._stage)
            pipeline.run(items)
            outcomes = pipeline.outcomes
            self._sync_dirs(pipeline.placed, outcomes)
        self._results[submission_id] = outcomes
        return submission_id

    # -- the steps of a batch, each run by the workers --------------------------------------
    @contextlib.contextmanager
    def _workers(self) -> Iterator[None]:
        from concurrent.futures import ThreadPoolExecutor  # here: a quiet run copies nothing

        self._made = set()
        if self.transfers > 1:
            self._pool = ThreadPoolExecutor(
                self.transfers,
                thread_name_prefix="autosync-copy",
                initializer=heartbeats.carry,  # the workers beat the cycle's heartbeat
                initargs=(heartbeats.current(),),
            )
        # flushes a window of copied files while the next window is copied
        self._flusher = ThreadPoolExecutor(
            1,
            thread_name_prefix="autosync-flush",
            initializer=heartbeats.carry,
            initargs=(heartbeats.current(),),
        )
        try:
            yield
        finally:
            for pool in (self._pool, self._flusher):
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
            self._pool = self._flusher = None

    def _pipeline(self, stage: Callable[[Item], Staged | Outcome]) -> Pipeline:
        # each file copied and not yet placed holds a descriptor, and two windows can be open
        # at once (one filling, one flushed): stay well inside the limit
        window = min(_WINDOW_FILES, os.sysconf("SC_OPEN_MAX") // 8)
        assert self._flusher is not None
        return Pipeline(
            stage,
            self._place,
            filecopy.sync_filesystem,
            self._pool,
            self._flusher,
            self.transfers,
            window,
            _WINDOW_BYTES,
        )

    def _map(self, fn: Callable[[_T], _R], args: Sequence[_T]) -> list[_R]:
        if self._pool is None or len(args) < 2:
            return [fn(arg) for arg in args]
        return list(self._pool.map(fn, args))

    def _found(self, item: Item, st: os.stat_result | None) -> Staged | Outcome | None:
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
            return _DONE
        return Staged(item, fd, dst, None)

    def _stage(self, item: Item) -> Staged | Outcome:
        heartbeats.beat(heartbeats.COPY)
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
    ) -> Staged | Outcome:
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
        return Staged(item, fdst, dst, tmp)

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

    def _place(self, staged: Staged) -> Outcome:
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
        heartbeats.beat(heartbeats.DESTINATION)
        return _DONE

    def _sync_dirs(self, placed: list[tuple[str, str]], outcomes: dict[str, Outcome]) -> None:
        """fsync once each directory that holds a new name. One that cannot be fails the files
        placed in it or below it (they are confirmed, not rewritten, when retried)."""
        names = sorted(self._made | {os.path.dirname(path) for _, path in placed})
        for directory, error in zip(names, self._map(_sync_dir, names), strict=True):
            if error is None:
                continue
            log.warning("cannot make the names in %s durable: %s", directory, error)
            below = directory.rstrip("/") + "/"
            for rel, path in placed:
                if path.startswith(below):
                    outcomes[rel] = Outcome(FAIL, f"cannot make {directory} durable: {error}")

    def poll(self, task_id: str, items: Sequence[Item], submitted_at: float) -> TaskReport:
        known = self._results.pop(task_id, None)
        if known is not None:
            return TaskReport(True, known, state="SUCCEEDED")
        # A batch of an interrupted run: what reached the destination intact is confirmed,
        # once it is durable.
        with self._workers():
            pipeline = self._pipeline(self._found_now)
            pipeline.run(items)
            outcomes = pipeline.outcomes
            self._sync_dirs(pipeline.placed, outcomes)
        if all(o.result == DONE for o in outcomes.values()):
            return TaskReport(True, outcomes, state="SUCCEEDED")
        return TaskReport(True, outcomes, reason="interrupted", state="INTERRUPTED")

    def _found_now(self, item: Item) -> Staged | Outcome:
        try:
            st = os.stat(self.destination / item.relpath)
        except OSError:
            st = None
        return self._found(item, st) or Outcome(RETRY, "interrupted")

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

    def verify_copies(self, reldir: str, names: Sequence[str]) -> dict[str, Copy]:
        folder = self.destination / reldir
        found: dict[str, Copy] = {}
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return found  # the directory is not there: neither is any file in it
        except OSError as err:
            raise TransportError(f"cannot look into {folder}: {_error(err)}") from None
        try:
            for name in names:
                try:
                    st = os.lstat(name, dir_fd=fd)
                except FileNotFoundError:
                    continue
                except OSError as err:
                    raise TransportError(f"cannot look at {folder / name}: {_error(err)}") from None
                if stat.S_ISREG(st.st_mode):
                    found[name] = Copy(st.st_size, st.st_mtime_ns)
        finally:
            os.close(fd)
        return found

    def held(self, reldir: str) -> Held:
        return held_in(self.folder(reldir), _beat_destination)

    def folder(self, reldir: str) -> str:
        """Where a directory of the destination is (``verify`` lists it in worker processes)."""
        return str(self.destination / reldir)

    def close(self) -> None:
        self._results.clear()


def _beat_destination() -> None:
    heartbeats.beat(heartbeats.DESTINATION)


def _sync_dir(directory: str) -> str | None:
    try:
        filecopy.fsync_directory(directory)
    except OSError as err:
        return _error(err)
    return None

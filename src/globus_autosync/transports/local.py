"""The local transport: a mounted directory.

Each file is written to a temporary name beside its destination, fsynced, given the source's
mtime, checked for size and renamed into place. A destination that already holds the same size
and mtime is left alone (its inode stays the same), which also makes resubmission after a crash
cheap. Batches finish inside ``submit``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import uuid
from collections.abc import Sequence
from pathlib import Path

from globus_autosync.config import Job
from globus_autosync.errors import TransportError
from globus_autosync.transports.base import (
    DONE,
    FAIL,
    RETRY,
    SKIP,
    Check,
    Copy,
    Item,
    Outcome,
    TaskReport,
)

log = logging.getLogger(__name__)

_CHUNK = 1 << 24


def temp_name(name: str) -> str:
    """The temporary name a file is written under: hidden, short, the same on every attempt."""
    import hashlib  # here: loading OpenSSL costs a quiet run 2 ms of start-up

    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:16]
    return f".autosync-{digest}.part"


def _copy_data(src: int, dst: int, size: int) -> None:
    offset = 0
    try:
        while offset < size:
            sent = os.sendfile(dst, src, offset, min(_CHUNK, size - offset))
            if sent == 0:
                break
            offset += sent
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOSYS) or offset:
            raise
        while chunk := os.read(src, _CHUNK):
            os.write(dst, chunk)
            offset += len(chunk)


def _error(err: OSError) -> str:
    return err.strerror or str(err)


class LocalTransport:
    name = "local"
    max_active = 1
    synchronous = True

    def __init__(self, job: Job) -> None:
        self.source = job.source
        self.destination = Path(job.destination)
        self._results: dict[str, dict[str, Outcome]] = {}

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
        touched: set[str] = set()
        for item in items:
            outcomes[item.relpath] = self._send(item, touched)
        for directory in touched:
            try:
                fd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as err:
                log.debug("fsync of %s failed: %s", directory, err)
        self._results[submission_id] = outcomes
        return submission_id

    def _send(self, item: Item, touched: set[str]) -> Outcome:
        src = self.source / item.relpath
        dst = self.destination / item.relpath
        try:
            st = dst.stat()
            if st.st_size == item.size and st.st_mtime_ns == item.mtime_ns:
                return Outcome(DONE)
        except OSError:
            pass
        tmp = dst.parent / temp_name(dst.name)
        try:
            fsrc = os.open(src, os.O_RDONLY)
        except FileNotFoundError:
            # a copy of it that a killed run left half-written would never be finished
            with contextlib.suppress(OSError):
                tmp.unlink()
            return Outcome(SKIP, "vanished before it could be sent")
        except OSError as err:
            # unreadable now (a permission, an I/O error): retried, so that fixing the cause
            # is enough to have it sent
            return Outcome(FAIL, f"cannot read: {_error(err)}")
        try:
            before = os.fstat(fsrc)
            if not stat.S_ISREG(before.st_mode):
                return Outcome(RETRY, "no longer a regular file")
            if (before.st_size, before.st_mtime_ns) != (item.size, item.mtime_ns):
                return Outcome(RETRY, "changed since it was scanned")
            if dst.is_dir() and not dst.is_symlink():
                return Outcome(FAIL, f"cannot write {dst}: a directory is in the way")
            dst.parent.mkdir(parents=True, exist_ok=True)
            fdst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _copy_data(fsrc, fdst, item.size)
                os.fsync(fdst)
            finally:
                os.close(fdst)
            after = os.fstat(fsrc)
            if (after.st_size, after.st_mtime_ns) != (item.size, item.mtime_ns):
                tmp.unlink()
                return Outcome(RETRY, "changed while it was being sent")
            os.utime(tmp, ns=(after.st_atime_ns, item.mtime_ns))
            written = tmp.stat().st_size
            if written != item.size:
                tmp.unlink()
                return Outcome(FAIL, f"destination holds {written} bytes, expected {item.size}")
            os.replace(tmp, dst)
            touched.add(str(dst.parent))
            return Outcome(DONE)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return Outcome(FAIL, f"cannot write {dst}: {_error(err)}")
        finally:
            os.close(fsrc)

    def poll(self, task_id: str, items: Sequence[Item], submitted_at: float) -> TaskReport:
        known = self._results.pop(task_id, None)
        if known is not None:
            return TaskReport(True, known, state="SUCCEEDED")
        # A batch of an interrupted run: what reached the destination intact is confirmed.
        outcomes: dict[str, Outcome] = {}
        for item in items:
            try:
                st = (self.destination / item.relpath).stat()
                ok = (st.st_size, st.st_mtime_ns) == (item.size, item.mtime_ns)
            except OSError:
                ok = False
            outcomes[item.relpath] = Outcome(DONE) if ok else Outcome(RETRY, "interrupted")
        if all(o.result == DONE for o in outcomes.values()):
            return TaskReport(True, outcomes, state="SUCCEEDED")
        return TaskReport(True, outcomes, reason="interrupted", state="INTERRUPTED")

    def mkdirs(self, relpaths: Sequence[str]) -> dict[str, str]:
        errors: dict[str, str] = {}
        for rel in relpaths:
            try:
                (self.destination / rel).mkdir(parents=True, exist_ok=True)
            except OSError as err:
                errors[rel] = _error(err)
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

    def close(self) -> None:
        self._results.clear()

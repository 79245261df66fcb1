"""Locks per job: one held during a cycle, so overlapping runs of a job never work on it at
once; one held by the ``watch`` that serves the job for as long as it runs, so a job has one
service (a second ``watch`` of it, or a ``run`` of it meanwhile, does nothing and says so)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from globus_autosync.errors import JobError, LockHeld
from globus_autosync.store import private


def _holder(fd: int) -> str:
    """The pid the holder of a lock wrote into its file."""
    try:
        return os.read(fd, 32).decode(errors="replace").strip() or "another process"
    except OSError:
        return "another process"


class JobLock:
    """An exclusive, non-blocking flock on ``<state dir>/locks/<job>.lock``; released by the OS
    when the process dies, so a killed run never leaves a stale lock."""

    suffix = "lock"

    def __init__(self, state_dir: Path, job: str) -> None:
        self.path = state_dir / "locks" / f"{job}.{self.suffix}"
        self.job = job
        self._fd: int | None = None

    def held(self, holder: str) -> str:
        """The line when another process holds the lock (``holder``: its pid)."""
        return f"job {self.job!r} is already running (pid {holder}); this run does nothing"

    def __enter__(self) -> Self:
        try:
            private.private_dir(self.path.parent)
            fd = private.create(self.path, os.O_RDWR)
        except OSError as err:
            raise JobError(f"cannot create the lock file {self.path}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise LockHeld(self.held(holder)) from None
        except OSError as err:
            os.close(fd)
            raise self._error("cannot lock", err) from None
        try:  # the holder's pid, for the message of a run that finds the job locked
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError as err:
            os.close(fd)  # releases the lock
            raise self._error("cannot write", err) from None
        self._fd = fd
        return self

    def _error(self, what: str, err: OSError) -> JobError:
        return JobError(
            f"job {self.job!r}: {what} the lock file {self.path}: {err.strerror or err}; check "
            "the state directory's disk, then run again"
        )

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # the lock is released even so
                os.close(self._fd)
            self._fd = None


class ServiceLock(JobLock):
    """Held by the ``watch`` that serves a job (``<state dir>/locks/<job>.service``) for as
    long as it runs: one service per job."""

    suffix = "service"

    def held(self, holder: str) -> str:
        return (
            f"job {self.job!r} is already served by another 'watch' (pid {holder}); stop that "
            "one first, or leave the job to it"
        )

    def release(self) -> None:
        self.__exit__(None, None, None)


class Served(ServiceLock):
    """``run``'s look at a job's service lock: free, or a LockHeld saying which ``watch``
    serves the job."""

    def held(self, holder: str) -> str:
        return (
            f"job {self.job!r} is served by 'watch' (pid {holder}), which sends its files; this "
            "run does nothing for it (run other jobs with --job, or stop the watch)"
        )

    @classmethod
    def check(cls, state_dir: Path, job: str) -> None:
        """Looks without writing: no file is no service; a shared flock that would block means
        a ``watch`` holds the exclusive one."""
        probe = cls(state_dir, job)
        try:
            fd = os.open(probe.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        except OSError as err:
            raise probe._error("cannot open", err) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(probe.held(_holder(fd))) from None
        except OSError as err:
            raise probe._error("cannot lock", err) from None
        finally:
            os.close(fd)

"""A job's pulse: the cycle in hand leaves a heartbeat in the store as it progresses (a
directory listed, a file copied, a request answered), so that any process (``status`` from
another shell, the next cron ``run``, ``watch``'s own loop) tells a job blocked in a system call
on a hung share from one that is merely slow: a long walk that moves is never a hang.

The cycle's thread may be the one that hangs, so the heartbeat is written by whichever thread
makes progress (a copy worker too), through a connection of its own that never waits on the
cycle's transactions (it skips a beat instead). A heartbeat left by a process that died is
told apart by the job's lock (``locks/<job>.lock``): the OS released it.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

from globus_autosync.store.connection import Connection

SOURCE, DESTINATION, COPY = "source", "destination", "copy"  # COPY: reads one, writes the other
EVERY = 1.0  # seconds between two writes of the same side's heartbeat, at most one a second
_WAIT = 0.05  # a write of the heartbeat waits this long for another writer, then is skipped

_local = threading.local()


class Beat(NamedTuple):
    started: float  # when the cycle in hand began
    beat: float  # its last sign of progress
    side: str  # what it waited on then: SOURCE, DESTINATION or COPY
    pid: int


class Heartbeats:
    """Reading a job's heartbeat (``Pulse`` writes it)."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def current(self, job_id: int) -> Beat | None:
        """The heartbeat of the cycle in hand, or None between cycles (or before version 8)."""
        if not self.db.has_table("heartbeats"):
            return None
        row = self.db.conn.execute(
            "SELECT started, beat, side, pid FROM heartbeats WHERE job=? AND started IS NOT NULL",
            (job_id,),
        ).fetchone()
        return Beat(*row) if row else None


def lock_held(state_dir: Path, job: str) -> bool:
    """Whether a process holds the job's cycle lock now (a shared flock would have to wait);
    it does not create the file."""
    try:
        fd = os.open(state_dir / "locks" / f"{job}.lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


class Pulse:
    """The heartbeat of one cycle of one job, written as it goes (``beat``)."""

    def __init__(self, db_path: Path, job_id: int) -> None:
        self.job_id = job_id
        self.lock = threading.Lock()
        self.last = 0.0
        self.side = ""
        self.conn: sqlite3.Connection | None = sqlite3.connect(
            db_path, timeout=_WAIT, isolation_level=None, check_same_thread=False
        )

    def begin(self, side: str = SOURCE) -> None:
        now = time.time()
        self._write(  # the start and the end wait for another writer as the store does
            "PRAGMA busy_timeout=60000", ()
        )
        self._write(
            "INSERT INTO heartbeats (job, started, beat, side, pid) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (job) DO UPDATE SET started=excluded.started, beat=excluded.beat, "
            "side=excluded.side, pid=excluded.pid",
            (self.job_id, now, now, side, os.getpid()),
        )
        self._write(f"PRAGMA busy_timeout={int(_WAIT * 1000)}", ())
        self.last, self.side = time.monotonic(), side

    def beat(self, side: str) -> None:
        """A sign of progress (``side``: what the cycle waits on next); written at most once a
        second, or when the side changes."""
        now = time.monotonic()
        if side == self.side and now - self.last < EVERY:
            return
        self.last, self.side = now, side
        self._write(
            "UPDATE heartbeats SET beat=?, side=? WHERE job=?", (time.time(), side, self.job_id)
        )

    def end(self) -> None:
        self._write("PRAGMA busy_timeout=60000", ())
        self._write(
            "UPDATE heartbeats SET started=NULL, beat=? WHERE job=?", (time.time(), self.job_id)
        )
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

    def _write(self, sql: str, args: tuple[object, ...]) -> None:
        with self.lock, suppress(sqlite3.Error):  # busy: the next beat writes it
            if self.conn is not None:
                self.conn.execute(sql, args)

    # -- the thread's pulse ---------------------------------------------------------------------
    def __enter__(self) -> Pulse:
        """The pulse of the cycle this thread runs (``beat()`` anywhere below finds it)."""
        self.begin()
        _local.pulse = self
        return self

    def __exit__(self, *exc: object) -> None:
        _local.pulse = None
        self.end()


def beat(side: str = SOURCE) -> None:
    """A sign of progress of the cycle this thread runs; nothing outside a cycle. Worker threads
    of a cycle pass its pulse on with ``carry``."""
    pulse: Pulse | None = getattr(_local, "pulse", None)
    if pulse is not None:
        pulse.beat(side)


def current() -> Pulse | None:
    """This thread's pulse, to hand to worker threads (``carry``)."""
    return getattr(_local, "pulse", None)


def carry(pulse: Pulse | None) -> None:
    """Make ``pulse`` this (worker) thread's."""
    _local.pulse = pulse

"""The state database: one SQLite file for every job. The only package that writes SQL.

Directories form a trie (parent, name). A directory's confirmed files live in one compressed
column (see codec), a few bytes per file; work in progress (seen, queued, submitted, failed,
skipped) has a row per file. Batches are a journal: written before they are submitted.

The tables, and the versions of the schema, are in ``schema``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

from globus_autosync.errors import StoreError
from globus_autosync.model.plan import QUEUED, SUBMITTED, WORK_STATES, DirPlan, Pending
from globus_autosync.store import codec, history, schema
from globus_autosync.store.actions import ActionQueries, ActionRow
from globus_autosync.store.cleanup import Candidate, CleanupQueries, CleanupTotals, Enrolled

__all__ = [
    "ActionRow", "BatchRow", "Candidate", "CleanupTotals", "Counts", "DirRow", "Enrolled",
    "QueuedFile", "RawState", "Store", "store_error",
]  # fmt: skip

log = logging.getLogger(__name__)

FILE_NAME = "state.db"
SCHEMA_VERSION = schema.VERSION

_FILE_COLS = "name, size, mtime_ns, state, since, queued_at, attempts, next_try, batch, reason"


class RawState(NamedTuple):
    """What a walk's lister needs of one directory (``Store.dir_raw_state``)."""

    done: bytes | None  # the confirmed listing, encoded (codec)
    digest: bytes | None  # of its last listing that needed nothing
    pending: dict[str, Pending]  # its rows of work in progress, by name
    chunks: bytes | None  # the digests of its runs of confirmed names (runs.pack)
    forgotten: bytes | None  # names cleanup took out of its confirmed listing since (NUL-joined)


class DirRow(NamedTuple):
    id: int
    parent: int
    name: str
    mtime_ns: int
    ino: int
    made: bool


class BatchRow(NamedTuple):
    id: int
    submission_id: str
    task_id: str | None
    label: str
    state: str
    files: int
    bytes: int
    created: float
    submitted: float | None
    finished: float | None
    reason: str | None


class QueuedFile(NamedTuple):
    dir: int
    row: Pending


class Counts(NamedTuple):
    done: int
    done_bytes: int
    seen: int
    queued: int
    submitted: int
    failed: int
    skipped: int
    oldest_settled: float | None
    last_run: tuple[float, str, str] | None  # finished, result, summary


_TIMEOUT = 60.0  # seconds to wait for another job's writer


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. Two processes creating the database at once: the switch answers
    "database is locked" at once instead of waiting for the busy timeout, so wait here."""
    deadline = time.monotonic() + _TIMEOUT
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def store_error(path: Path, err: sqlite3.Error) -> StoreError:
    """One line for an SQLite error, with what to do: only a damaged file is to be moved aside
    (a full disk, a lock or a permission leaves the database as its last transaction did)."""
    name = getattr(err, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return StoreError(
            f"state database {path} is damaged ({err}); move it aside to start afresh"
        )
    if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        what = "check that its file system has free space and is healthy"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        what = "another process holds it: let it finish, or find it with 'fuser'"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        what = "check the permissions of the state directory and the files in it"
    else:
        what = "fix the cause"
    return StoreError(
        f"state database {path}: {err}; {what}, then run again (what it held is intact)"
    )


def _pending(r: tuple[object, ...]) -> Pending:
    return Pending(*r)  # type: ignore[arg-type]


class Store(CleanupQueries, ActionQueries):
    """One connection to the state database."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, state_dir: Path) -> Store:
        """Open the database, creating it (and the state directory) if needed."""
        path = state_dir / FILE_NAME
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=_TIMEOUT, isolation_level=None)
            _use_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            store = cls(conn, path)
            store.ensure_schema()
        except sqlite3.Error as err:
            raise store_error(path, err) from None
        except OSError as err:
            raise StoreError(
                f"cannot create the state directory {state_dir}: {err.strerror}"
            ) from None
        return store

    @classmethod
    def open_readonly(cls, state_dir: Path) -> Store | None:
        """Open an existing database for reading; None if there is none yet."""
        path = state_dir / FILE_NAME
        if not path.exists():
            return None
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
            store = cls(conn, path)
            version = schema.version(conn)
            if version is None:
                conn.close()
                return None
            if not schema.READABLE_FROM <= version <= schema.VERSION:
                schema.check(conn, path)
        except sqlite3.Error as err:
            raise store_error(path, err) from None
        return store

    def ensure_schema(self) -> None:
        """Create the schema in a new database, upgrade an older one; refuse a newer one."""
        version = schema.version(self.conn)
        if version is None:
            schema.create(self.conn)
        elif version < schema.VERSION:
            with self.tx():
                schema.upgrade(self.conn, self.path)
        schema.check(self.conn, self.path)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def tx(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE: it waits for a writer of another job). Whatever
        fails inside, COMMIT included (a full disk), leaves no transaction open."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:  # SQLite may have rolled it back already
                with suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def guard(self) -> Iterator[None]:
        """An SQLite error in what runs inside becomes one line saying what to do."""
        try:
            yield
        except sqlite3.Error as err:
            raise store_error(self.path, err) from None

    # -- jobs and directories -------------------------------------------------------------
    def find_job(self, name: str) -> int | None:
        row = self.conn.execute("SELECT id FROM jobs WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else None

    def job_id(self, name: str) -> int:
        """The job's id, adding the job if it is new."""
        found = self.find_job(name)
        if found is not None:
            return found
        with self.tx():
            self.conn.execute("INSERT OR IGNORE INTO jobs (name) VALUES (?)", (name,))
        return int(self.conn.execute("SELECT id FROM jobs WHERE name=?", (name,)).fetchone()[0])

    def last_full_scan(self, job: int) -> float:
        row = self.conn.execute("SELECT last_full_scan FROM jobs WHERE id=?", (job,)).fetchone()
        return float(row[0]) if row else 0.0

    def set_last_full_scan(self, job: int, when: float) -> None:
        with self.tx():
            self.conn.execute("UPDATE jobs SET last_full_scan=? WHERE id=?", (when, job))

    def dirs(self, job: int) -> list[DirRow]:
        """Every known directory of a job, parents before children."""
        rows = self.conn.execute(
            "SELECT id, parent, name, mtime_ns, ino, made FROM dirs WHERE job=? ORDER BY id", (job,)
        )
        return [DirRow(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def add_dir(self, job: int, parent: int, name: str) -> int:
        with self.tx():
            self.conn.execute(
                "INSERT OR IGNORE INTO dirs (job, parent, name) VALUES (?, ?, ?)",
                (job, parent, name),
            )
        row = self.conn.execute(
            "SELECT id FROM dirs WHERE job=? AND parent=? AND name=?", (job, parent, name)
        ).fetchone()
        return int(row[0])

    def busy_dirs(self, job: int) -> set[int]:
        """Directories holding files that are not settled, not sent or not confirmed."""
        marks = ",".join("?" * len(WORK_STATES))
        rows = self.conn.execute(
            f"SELECT DISTINCT dir FROM files WHERE job=? AND state IN ({marks})",
            (job, *WORK_STATES),
        )
        return {r[0] for r in rows}

    def dir_state(self, dir_id: int) -> tuple[dict[str, tuple[int, int]], dict[str, Pending]]:
        """One directory's confirmed listing and its work in progress."""
        row = self.conn.execute("SELECT done FROM dirs WHERE id=?", (dir_id,)).fetchone()
        done = codec.decode(row[0] if row else None)
        rows = self.conn.execute(f"SELECT {_FILE_COLS} FROM files WHERE dir=?", (dir_id,))
        return done, {r[0]: _pending(r) for r in rows}

    # -- for the walker (walk.py); added for issue 4 -------------------------------------
    def dirs_with_rows(self, job: int) -> set[int]:
        """Directories with any row in ``files`` (work in progress or skipped): the others need
        no ``files`` query when they are listed."""
        rows = self.conn.execute("SELECT DISTINCT dir FROM files WHERE job=?", (job,))
        return {r[0] for r in rows}

    def dir_raw_state(self, dir_id: int, rows: bool = True) -> RawState:
        """``dir_state`` with the confirmed listing still encoded (a worker process decodes it),
        the digest of the last listing that needed nothing and the digests of a large
        directory's runs of confirmed names; ``rows=False`` when the caller knows the directory
        has no row in ``files``."""
        row = self.conn.execute(
            "SELECT done, digest, chunks, forgotten FROM dirs WHERE id=?", (dir_id,)
        ).fetchone()
        done, digest, chunks, forgotten = row if row else (None, None, None, None)
        if not rows:
            return RawState(done, digest, {}, chunks, forgotten)
        found = self.conn.execute(f"SELECT {_FILE_COLS} FROM files WHERE dir=?", (dir_id,))
        return RawState(done, digest, {r[0]: _pending(r) for r in found}, chunks, forgotten)

    def confirmed_files(self, job: int) -> int:
        """How many files of a job are confirmed: the size of its tree, for the walker."""
        row = self.conn.execute(
            "SELECT COALESCE(SUM(nfiles), 0) FROM dirs WHERE job=?", (job,)
        ).fetchone()
        return int(row[0])

    # ---------------------------------------------------------------------------------------
    def apply_dir(
        self, job: int, dir_id: int, plan: DirPlan, mtime_ns: int, ino: int, made: bool | None
    ) -> None:
        """Record a directory's listing: its changes, the (mtime, inode) it was listed at, the
        digest of a listing that needed nothing (``plan.digest``) and a large directory's runs
        of confirmed names (``plan.chunks``, which clear its ``forgotten`` names)."""
        with self.tx():
            self._write_rows(job, dir_id, plan.upserts)
            self.conn.executemany(
                "DELETE FROM files WHERE dir=? AND name=?", ((dir_id, n) for n in plan.deletes)
            )
            self.conn.execute(
                # new digests of the runs were made against the confirmed listing as it is now:
                # the names cleanup took out before are accounted for
                "UPDATE dirs SET mtime_ns=?, ino=?, made=COALESCE(?, made), "
                "digest=COALESCE(?, digest), chunks=COALESCE(?, chunks), "
                "forgotten=CASE WHEN ? THEN NULL ELSE forgotten END WHERE id=?",
                (mtime_ns, ino, made, plan.digest, plan.chunks, plan.chunks is not None,
                 dir_id),
            )  # fmt: skip

    def _write_rows(self, job: int, dir_id: int, rows: Iterable[Pending]) -> None:
        self.conn.executemany(
            f"INSERT OR REPLACE INTO files (dir, job, {_FILE_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (dir_id, job, p.name, p.size, p.mtime_ns, p.state, p.since, p.queued_at,
                 p.attempts, p.next_try, p.batch, p.reason)
                for p in rows
            ),
        )  # fmt: skip

    def drop_pending(self, dir_ids: Iterable[int]) -> int:
        """Work not yet sent in directories that vanished from the source (a remote listing
        no longer shows them): forgotten, their confirmed listings kept. Files in flight stay
        with their batch. Returns the rows dropped."""
        with self.tx():
            cur = self.conn.executemany(
                "DELETE FROM files WHERE dir=? AND state!=?", ((d, SUBMITTED) for d in dir_ids)
            )
        return max(cur.rowcount, 0)

    def forget_dir_mtime(self, dir_id: int) -> None:
        with self.tx():
            self.conn.execute("UPDATE dirs SET mtime_ns=-1 WHERE id=?", (dir_id,))

    def mark_made(self, dir_ids: Iterable[int]) -> None:
        with self.tx():
            self.conn.executemany("UPDATE dirs SET made=1 WHERE id=?", ((d,) for d in dir_ids))

    def confirm_baseline(self, dir_id: int, files: dict[str, tuple[int, int]]) -> None:
        """Record files as confirmed without sending them (``baseline``)."""
        with self.tx():
            self._merge_done(dir_id, files)
            if self.conn.execute("SELECT 1 FROM files WHERE dir=? LIMIT 1", (dir_id,)).fetchone():
                self.conn.executemany(
                    "DELETE FROM files WHERE dir=? AND name=? AND state!=?",
                    ((dir_id, n, SUBMITTED) for n in files),
                )

    def _merge_done(self, dir_id: int, files: dict[str, tuple[int, int]]) -> None:
        row = self.conn.execute("SELECT done FROM dirs WHERE id=?", (dir_id,)).fetchone()
        # merged without decoding the files it keeps: a few bytes a file, whatever the directory
        done, nfiles, added = codec.merge(row[0], files)
        self.conn.execute(
            # the digest vouched for a listing against the old `done`: forget it
            "UPDATE dirs SET done=?, nfiles=?, nbytes=nbytes+?, digest=NULL WHERE id=?",
            (done, nfiles, added, dir_id),
        )

    # -- batches --------------------------------------------------------------------------
    def queued(self, job: int, limit: int) -> list[QueuedFile]:
        rows = self.conn.execute(
            f"SELECT dir, {_FILE_COLS} FROM files WHERE job=? AND state=? "
            "ORDER BY queued_at, dir, name LIMIT ?",
            (job, QUEUED, limit),
        )
        return [QueuedFile(r[0], _pending(r[1:])) for r in rows]

    def create_batch(
        self, job: int, submission_id: str | None, label: str, files: list[QueuedFile], now: float
    ) -> BatchRow:
        """Journal a batch and move its files to ``submitted`` in one transaction."""
        import uuid

        sub = submission_id or str(uuid.uuid4())
        nbytes = sum(f.row.size for f in files)
        with self.tx():
            cur = self.conn.execute(
                "INSERT INTO batches (job, submission_id, label, state, files, bytes, created) "
                "VALUES (?, ?, ?, 'new', ?, ?, ?)",
                (job, sub, label, len(files), nbytes, now),
            )
            batch = int(cur.lastrowid or 0)
            self.conn.executemany(
                "UPDATE files SET state=?, batch=? WHERE dir=? AND name=?",
                ((SUBMITTED, batch, f.dir, f.row.name) for f in files),
            )
        return BatchRow(batch, sub, None, label, "new", len(files), nbytes, now, None, None, None)

    def batch_submitted(self, batch: int, task_id: str, now: float) -> None:
        with self.tx():
            self.conn.execute(
                "UPDATE batches SET state='submitted', task_id=?, submitted=? WHERE id=?",
                (task_id, now, batch),
            )

    def note_batch(self, batch: int, reason: str | None) -> None:
        """Why a batch in flight is not getting on (None: it is again), for ``status``."""
        with self.tx():
            self.conn.execute(
                "UPDATE batches SET reason=? WHERE id=? AND state='submitted'", (reason, batch)
            )

    def open_batches(self, job: int) -> list[BatchRow]:
        return self._batches("WHERE job=? AND state IN ('new', 'submitted') ORDER BY id", (job,))

    def recent_batches(self, job: int, limit: int) -> list[BatchRow]:
        return self._batches("WHERE job=? ORDER BY id DESC LIMIT ?", (job, limit))

    def _batches(self, where: str, args: tuple[object, ...]) -> list[BatchRow]:
        rows = self.conn.execute(
            "SELECT id, submission_id, task_id, label, state, files, bytes, created, submitted, "
            f"finished, reason FROM batches {where}",
            args,
        )
        return [BatchRow(*r) for r in rows]

    def batch_files(self, batch: int) -> list[QueuedFile]:
        rows = self.conn.execute(
            f"SELECT dir, {_FILE_COLS} FROM files WHERE batch=? AND state=? ORDER BY dir, name",
            (batch, SUBMITTED),
        )
        return [QueuedFile(r[0], _pending(r[1:])) for r in rows]

    def resolve_batch(
        self,
        job: int,
        batch: int,
        state: str,
        reason: str | None,
        done: list[QueuedFile],
        others: list[tuple[int, Pending]],
        now: float,
        enroll: list[Enrolled] | None = None,
        after: Callable[[], None] | None = None,
    ) -> None:
        """Close a batch: merge confirmed files into their directories, rewrite the others;
        ``enroll``: confirmed files that source cleanup may delete later; ``after`` runs in
        the same transaction (the actions of the confirmed files are journaled with them)."""
        by_dir: dict[int, dict[str, tuple[int, int]]] = {}
        for f in done:
            by_dir.setdefault(f.dir, {})[f.row.name] = (f.row.size, f.row.mtime_ns)
        with self.tx():
            for dir_id, files in by_dir.items():
                self._merge_done(dir_id, files)
                # list it once more: a file may have changed while it was in flight
                self.conn.execute("UPDATE dirs SET mtime_ns=-1 WHERE id=?", (dir_id,))
                self.conn.executemany(
                    "DELETE FROM files WHERE dir=? AND name=? AND batch=?",
                    ((dir_id, n, batch) for n in files),
                )
            for dir_id, row in others:
                self._write_rows(job, dir_id, [row])
            if enroll:
                self.enroll(job, enroll, now, batch, replace=True)
            if after is not None:
                after()
            self.conn.execute(
                "UPDATE batches SET state=?, reason=?, finished=? WHERE id=?",
                (state, reason, now, batch),
            )

    # -- runs and reporting ---------------------------------------------------------------
    def record_run(
        self,
        job: int,
        started: float,
        finished: float,
        full: bool,
        result: str,
        summary: str,
        free_bytes: int | None = None,
    ) -> None:
        """A cycle's run, and (at most every 5 minutes) a row of the page's history."""
        with self.tx():
            history.note(self, job, finished, free_bytes)
            self.conn.execute(
                "INSERT INTO runs (job, started, finished, full, result, summary) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job, started, finished, int(full), result, summary),
            )
            # keep the last thousand runs of a job
            self.conn.execute(
                "DELETE FROM runs WHERE job=? AND id <= "
                "(SELECT id FROM runs WHERE job=? ORDER BY id DESC LIMIT 1 OFFSET 1000)",
                (job, job),
            )

    def counts(self, job: int) -> Counts:
        done, nbytes = self.conn.execute(
            "SELECT COALESCE(SUM(nfiles), 0), COALESCE(SUM(nbytes), 0) FROM dirs WHERE job=?",
            (job,),
        ).fetchone()
        by_state = dict(
            self.conn.execute(
                "SELECT state, COUNT(*) FROM files WHERE job=? GROUP BY state", (job,)
            ).fetchall()
        )
        oldest = self.conn.execute(
            "SELECT MIN(queued_at) FROM files WHERE job=? AND state IN ('queued', 'submitted', "
            "'failed')",
            (job,),
        ).fetchone()[0]
        last = self.conn.execute(
            "SELECT finished, result, summary FROM runs WHERE job=? ORDER BY id DESC LIMIT 1",
            (job,),
        ).fetchone()
        return Counts(
            done=done,
            done_bytes=nbytes,
            seen=by_state.get("seen", 0),
            queued=by_state.get("queued", 0),
            submitted=by_state.get("submitted", 0),
            failed=by_state.get("failed", 0),
            skipped=by_state.get("skipped", 0),
            oldest_settled=oldest,
            last_run=tuple(last) if last else None,
        )

    def run_times(self, job: int) -> tuple[float | None, float | None]:
        """When the last successful cycle ended, and how long the last cycle took."""
        ok = self.conn.execute(
            "SELECT MAX(finished) FROM runs WHERE job=? AND result='ok'", (job,)
        ).fetchone()[0]
        last = self.conn.execute(
            "SELECT finished - started FROM runs WHERE job=? ORDER BY id DESC LIMIT 1", (job,)
        ).fetchone()
        return ok, (last[0] if last else None)

    def next_due(
        self, job: int, settle: float, batch_window: float, trust_mtime: bool = True
    ) -> float | None:
        """The earliest moment a file will settle, a batch window close or a retry fall due
        (``trust_mtime=False``: a file settles by observation time only, plan.settled)."""
        seen = "MIN(since, mtime_ns / 1e9)" if trust_mtime else "since"
        row = self.conn.execute(
            "SELECT MIN(CASE state "
            f"  WHEN 'seen' THEN {seen} + :settle "
            "  WHEN 'queued' THEN queued_at + :window "
            "  ELSE next_try END) "
            "FROM files WHERE job=:job AND state IN ('seen', 'queued', 'failed')",
            {"job": job, "settle": settle, "window": batch_window},
        ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def failures(self, job: int, limit: int = 20) -> list[tuple[int, Pending]]:
        """Failed and skipped files, newest first, for ``status``."""
        rows = self.conn.execute(
            f"SELECT dir, {_FILE_COLS} FROM files WHERE job=? AND state IN ('failed', 'skipped') "
            "ORDER BY since DESC LIMIT ?",
            (job, limit),
        )
        return [(r[0], _pending(r[1:])) for r in rows]

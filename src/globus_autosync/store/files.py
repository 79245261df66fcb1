"""The rows of work in progress: a file seen, queued, in flight, failed or skipped has a row in
``files`` until it is confirmed (then it lives in its directory's confirmed listing)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from globus_autosync.model.plan import SUBMITTED, WORK_STATES, Pending
from globus_autosync.store.connection import Connection
from globus_autosync.store.names import escape, unescape

FILE_COLS = "name, size, mtime_ns, state, since, queued_at, attempts, next_try, batch, reason"


class QueuedFile(NamedTuple):
    """A row of work in progress and its directory."""

    dir: int
    row: Pending


def pending(r: tuple[object, ...]) -> Pending:
    """A ``Pending`` from the columns ``FILE_COLS`` (its name as the file system has it)."""
    return Pending(unescape(r[0]), *r[1:])  # type: ignore[arg-type]


class WorkFiles:
    """Every statement about the rows of ``files``."""

    def __init__(self, db: Connection) -> None:
        self.db = db
        self.conn = db.conn

    def of_dir(self, dir_id: int) -> dict[str, Pending]:
        """A directory's rows, by name."""
        rows = self.conn.execute(f"SELECT {FILE_COLS} FROM files WHERE dir=?", (dir_id,))
        return {p.name: p for p in map(pending, rows)}

    def names(self, dir_id: int) -> set[str]:
        """Names of a directory with a row in ``files``: waiting, queued, in flight, failed or
        skipped; none of them may be deleted."""
        rows = self.conn.execute("SELECT name FROM files WHERE dir=?", (dir_id,))
        return {unescape(r[0]) for r in rows}

    def busy_dirs(self, job: int) -> set[int]:
        """Directories holding files that are not settled, not sent or not confirmed."""
        marks = ",".join("?" * len(WORK_STATES))
        rows = self.conn.execute(
            f"SELECT DISTINCT dir FROM files WHERE job=? AND state IN ({marks})",
            (job, *WORK_STATES),
        )
        return {r[0] for r in rows}

    def dirs_with_rows(self, job: int) -> set[int]:
        """Directories with any row in ``files`` (work in progress or skipped): the others need
        no ``files`` query when they are listed."""
        rows = self.conn.execute("SELECT DISTINCT dir FROM files WHERE job=?", (job,))
        return {r[0] for r in rows}

    def write(self, job: int, dir_id: int, rows: Iterable[Pending]) -> None:
        """Add or replace rows of a directory, in the caller's transaction."""
        self.conn.executemany(
            f"INSERT OR REPLACE INTO files (dir, job, {FILE_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    dir_id,
                    job,
                    escape(p.name),
                    p.size,
                    p.mtime_ns,
                    p.state,
                    p.since,
                    p.queued_at,
                    p.attempts,
                    p.next_try,
                    p.batch,
                    p.reason,
                )
                for p in rows
            ),
        )

    def drop_pending(self, dir_ids: Iterable[int]) -> int:
        """Work not yet sent in directories that vanished from the source (a remote listing
        no longer shows them): forgotten, their confirmed listings kept. Files in flight stay
        with their batch. Returns the rows dropped."""
        with self.db.tx():
            cur = self.conn.executemany(
                "DELETE FROM files WHERE dir=? AND state!=?", ((d, SUBMITTED) for d in dir_ids)
            )
        return max(cur.rowcount, 0)

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

    def failures(self, job: int, limit: int = 20) -> list[QueuedFile]:
        """Failed and skipped files, newest first, for ``status``."""
        rows = self.conn.execute(
            f"SELECT dir, {FILE_COLS} FROM files WHERE job=? AND state IN ('failed', 'skipped') "
            "ORDER BY since DESC LIMIT ?",
            (job, limit),
        )
        return [QueuedFile(r[0], pending(r[1:])) for r in rows]

"""The store's side of source cleanup: the confirmed files that may be deleted, the journal
mark set before an unlink, and each job's totals. Only SQL; the rules are in the package
``cleanup``.

A row of ``cleanup`` is a confirmed file with the (size, mtime_ns, inode) it had when it was
confirmed. Finding what is due reads the ``(job, confirmed)`` index: it costs the files due, not
the tree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from globus_autosync.model.plan import Pending
from globus_autosync.store.connection import Connection
from globus_autosync.store.dirs import Directories
from globus_autosync.store.files import WorkFiles
from globus_autosync.store.names import escape, unescape


class Candidate(NamedTuple):  # a tuple: a hundred thousand of them are made per cycle at most
    """A confirmed file that cleanup may delete."""

    dir: int
    name: str
    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int
    confirmed: float
    batch: int | None
    deleting: int  # 1: journaled for deletion
    attempts: int
    task_id: str | None = None


class CleanupTotals(NamedTuple):
    files: int
    bytes: int
    last: float | None
    waiting: int  # confirmed files not yet deleted
    failing: int  # of which the last attempt failed


_CHUNK = 500  # names bound in one statement (SQLite allows 32,766 variables)


class Enrolled(NamedTuple):
    """A file just confirmed, with the inode and ctime it has on the source."""

    dir: int
    name: str
    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int


_COLS = (
    "c.dir, c.name, c.size, c.mtime_ns, c.ino, c.ctime_ns, c.confirmed, c.batch, c.deleting, "
    "c.attempts, b.task_id"
)


class CleanupCandidates:
    """Every statement about cleanup: the candidates, their journal and each job's totals."""

    def __init__(self, db: Connection, dirs: Directories, files: WorkFiles) -> None:
        self.db = db
        self.conn = db.conn
        self.dirs, self.work = dirs, files

    # -- enrolment ------------------------------------------------------------------------
    def enrolled(self, job: int) -> float | None:
        """When the job's earlier confirmed files were enrolled; None: not yet (or anew)."""
        row = self.conn.execute("SELECT enrolled FROM cleanup_jobs WHERE job=?", (job,)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def set_enrolled(self, job: int, when: float | None) -> None:
        with self.db.tx():
            self.conn.execute("INSERT OR IGNORE INTO cleanup_jobs (job) VALUES (?)", (job,))
            self.conn.execute("UPDATE cleanup_jobs SET enrolled=? WHERE job=?", (when, job))

    def off(self, job: int) -> None:
        """Cleanup was turned off: forget the candidates (none is journaled: a run that was
        interrupted in the middle of deleting is resolved first)."""
        with self.db.tx():
            self.conn.execute("DELETE FROM cleanup WHERE job=? AND deleting=0", (job,))
            self.conn.execute("UPDATE cleanup_jobs SET enrolled=NULL WHERE job=?", (job,))

    def enroll(
        self,
        job: int,
        files: Iterable[Enrolled],
        confirmed: float,
        batch: int | None,
        replace: bool,
    ) -> None:
        """Add confirmed files as candidates, in the caller's transaction. ``replace``: a new
        confirmation replaces an older one (a file sent again); else an existing row stays."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        self.conn.executemany(
            f"{verb} INTO cleanup (dir, name, job, size, mtime_ns, ino, ctime_ns, confirmed, "
            "batch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((d, escape(n), job, s, m, i, ct, confirmed, batch) for d, n, s, m, i, ct in files),
        )

    def enroll_dir(self, job: int, files: list[Enrolled], confirmed: float) -> None:
        with self.db.tx():
            self.enroll(job, files, confirmed, None, replace=False)

    # -- what is due ------------------------------------------------------------------------
    def due(
        self, job: int, before: float, now: float, limit: int, actions: bool = True
    ) -> list[Candidate]:
        """Candidates confirmed before ``before`` whose retry is due, oldest confirmation first;
        not those an action still needs (``actions``: the job has actions)."""
        # a file whose action (flow run, command) has not ended yet is kept for it
        for_actions = (
            "AND NOT EXISTS (SELECT 1 FROM action_files f JOIN actions a ON a.id = f.action "
            "WHERE f.dir = c.dir AND f.name = c.name "
            "AND a.state IN ('collecting', 'pending', 'running')) "
        )
        rows = self.conn.execute(
            f"SELECT {_COLS} FROM cleanup c LEFT JOIN batches b ON b.id = c.batch "
            "WHERE c.job=? AND c.confirmed < ? AND c.next_try <= ? AND c.deleting = 0 "
            f"{for_actions if actions else ''}ORDER BY c.confirmed, c.dir, c.name LIMIT ?",
            (job, before, now, limit),
        )
        return [Candidate(r[0], unescape(r[1]), *r[2:]) for r in rows]

    def interrupted(self, job: int) -> list[Candidate]:
        """Candidates journaled for deletion by a run that did not resolve them."""
        rows = self.conn.execute(
            f"SELECT {_COLS} FROM cleanup c LEFT JOIN batches b ON b.id = c.batch "
            "WHERE c.job=? AND c.deleting = 1 ORDER BY c.dir, c.name",
            (job,),
        )
        return [Candidate(r[0], unescape(r[1]), *r[2:]) for r in rows]

    # -- the journal ------------------------------------------------------------------------
    def journal(self, dir_id: int, files: list[Candidate]) -> None:
        """Mark files of one directory as about to be deleted: written before any unlink."""
        with self.db.tx():
            self._by_names("UPDATE cleanup SET deleting=1", dir_id, [c.name for c in files])

    def _by_names(self, statement: str, dir_id: int, names: list[str]) -> None:
        """``statement`` (an UPDATE or DELETE of ``cleanup``) for these names of a directory,
        a few hundred names a statement (one statement per row cost more than the unlinks)."""
        for i in range(0, len(names), _CHUNK):
            chunk = [escape(n) for n in names[i : i + _CHUNK]]
            self.conn.execute(
                f"{statement} WHERE dir=? AND name IN ({','.join('?' * len(chunk))})",
                (dir_id, *chunk),
            )

    def resolve(
        self,
        job: int,
        dir_id: int,
        deleted: list[Candidate],
        kept: list[Candidate],
        dropped: list[Candidate],
        failed: list[tuple[Candidate, str | None, float]],
        requeue: list[Pending],
        now: float,
    ) -> None:
        """After the unlinks of one directory, in one transaction: deleted files leave the
        directory's confirmed listing (``Directories.take_out_confirmed``); ``kept`` ones wait
        for a later cycle; ``dropped`` ones are no longer candidates; failed ones are retried
        at their time (those without a reason were not due yet); ``requeue`` rows are sent
        again."""
        with self.db.tx():
            if deleted:
                self.dirs.take_out_confirmed(dir_id, {c.name for c in deleted})
                self.conn.execute("INSERT OR IGNORE INTO cleanup_jobs (job) VALUES (?)", (job,))
                self.conn.execute(
                    "UPDATE cleanup_jobs SET files=files+?, bytes=bytes+?, last=? WHERE job=?",
                    (len(deleted), sum(c.size for c in deleted), now, job),
                )
            self._by_names("DELETE FROM cleanup", dir_id, [c.name for c in (*deleted, *dropped)])
            self._by_names("UPDATE cleanup SET deleting=0", dir_id, [c.name for c in kept])
            self.conn.executemany(  # a reason: it failed; none: it is not due until then
                "UPDATE cleanup SET deleting=0, attempts=attempts+(? IS NOT NULL), next_try=?, "
                "reason=COALESCE(?, reason) WHERE dir=? AND name=?",
                ((reason, when, reason, c.dir, escape(c.name)) for c, reason, when in failed),
            )
            if requeue:
                self.work.write(job, dir_id, requeue)
            if dropped or requeue:
                # list it again: a file changed or must be sent again
                self.conn.execute("UPDATE dirs SET mtime_ns=-1 WHERE id=?", (dir_id,))

    # -- reporting ------------------------------------------------------------------------
    def totals(self, job: int) -> CleanupTotals:
        if not self.db.has_table("cleanup"):  # a database of an older version, read by `status`
            return CleanupTotals(0, 0, None, 0, 0)
        row = self.conn.execute(
            "SELECT files, bytes, last FROM cleanup_jobs WHERE job=?", (job,)
        ).fetchone()
        waiting, failing = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(attempts > 0), 0) FROM cleanup WHERE job=?", (job,)
        ).fetchone()
        files, nbytes, last = row if row else (0, 0, None)
        return CleanupTotals(files, nbytes, last, waiting, failing)

    def failures(self, job: int, limit: int = 20) -> list[tuple[int, str, str]]:
        """(dir, name, reason) of candidates whose deletion failed, newest first."""
        rows = self.conn.execute(
            "SELECT dir, name, reason FROM cleanup WHERE job=? AND attempts > 0 "
            "ORDER BY next_try DESC LIMIT ?",
            (job, limit),
        )
        return [(r[0], unescape(r[1]), r[2] or "") for r in rows]

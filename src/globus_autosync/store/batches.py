"""Batches, a journal: a batch is written, with its files moved to ``submitted``, before it is
submitted; resolving it confirms its files, enrolls them for cleanup and records their actions,
in one transaction."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, NamedTuple

from globus_autosync.model.plan import QUEUED, SUBMITTED, Pending
from globus_autosync.store.actions import ActionJournal
from globus_autosync.store.cleanup import CleanupCandidates, Enrolled
from globus_autosync.store.connection import Connection
from globus_autosync.store.dirs import Directories
from globus_autosync.store.files import FILE_COLS, QueuedFile, WorkFiles, pending
from globus_autosync.store.names import escape

if TYPE_CHECKING:
    from globus_autosync.store.actions import ActionRecord


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


class Batches:
    """Every statement about batches, and the transaction that resolves one."""

    def __init__(
        self,
        db: Connection,
        dirs: Directories,
        files: WorkFiles,
        cleanup: CleanupCandidates,
        actions: ActionJournal,
    ) -> None:
        self.db = db
        self.conn = db.conn
        self.dirs, self.work, self.cleanup, self.actions = dirs, files, cleanup, actions

    def queued(self, job: int, limit: int) -> list[QueuedFile]:
        rows = self.conn.execute(
            f"SELECT dir, {FILE_COLS} FROM files WHERE job=? AND state=? "
            "ORDER BY queued_at, dir, name LIMIT ?",
            (job, QUEUED, limit),
        )
        return [QueuedFile(r[0], pending(r[1:])) for r in rows]

    def create(
        self, job: int, submission_id: str | None, label: str, files: list[QueuedFile], now: float
    ) -> BatchRow:
        """Journal a batch and move its files to ``submitted`` in one transaction."""
        sub = submission_id or str(uuid.uuid4())
        nbytes = sum(f.row.size for f in files)
        with self.db.tx():
            cur = self.conn.execute(
                "INSERT INTO batches (job, submission_id, label, state, files, bytes, created) "
                "VALUES (?, ?, ?, 'new', ?, ?, ?)",
                (job, sub, label, len(files), nbytes, now),
            )
            batch = int(cur.lastrowid or 0)
            self.conn.executemany(
                "UPDATE files SET state=?, batch=? WHERE dir=? AND name=?",
                ((SUBMITTED, batch, f.dir, escape(f.row.name)) for f in files),
            )
        return BatchRow(batch, sub, None, label, "new", len(files), nbytes, now, None, None, None)

    def submitted(self, batch: int, task_id: str, now: float) -> None:
        with self.db.tx():
            self.conn.execute(
                "UPDATE batches SET state='submitted', task_id=?, submitted=? WHERE id=?",
                (task_id, now, batch),
            )

    def note(self, batch: int, reason: str | None) -> None:
        """Why a batch in flight is not getting on (None: it is again), for ``status``."""
        with self.db.tx():
            self.conn.execute(
                "UPDATE batches SET reason=? WHERE id=? AND state='submitted'", (reason, batch)
            )

    def unresolved(self, job: int) -> list[BatchRow]:
        """The batches journaled or submitted, not yet resolved."""
        return self._select("WHERE job=? AND state IN ('new', 'submitted') ORDER BY id", (job,))

    def recent(self, job: int, limit: int) -> list[BatchRow]:
        return self._select("WHERE job=? ORDER BY id DESC LIMIT ?", (job, limit))

    def _select(self, where: str, args: tuple[object, ...]) -> list[BatchRow]:
        rows = self.conn.execute(
            "SELECT id, submission_id, task_id, label, state, files, bytes, created, submitted, "
            f"finished, reason FROM batches {where}",
            args,
        )
        return [BatchRow(*r) for r in rows]

    def files(self, batch: int) -> list[QueuedFile]:
        rows = self.conn.execute(
            f"SELECT dir, {FILE_COLS} FROM files WHERE batch=? AND state=? ORDER BY dir, name",
            (batch, SUBMITTED),
        )
        return [QueuedFile(r[0], pending(r[1:])) for r in rows]

    def resolve(
        self,
        job: int,
        batch: int,
        state: str,
        reason: str | None,
        confirmed: list[QueuedFile],
        others: list[tuple[int, Pending]],
        now: float,
        enroll: list[Enrolled] | None = None,
        actions: ActionRecord | None = None,
    ) -> None:
        """Close a batch: merge confirmed files into their directories' confirmed listings,
        rewrite the others; ``enroll``: confirmed files that source cleanup may delete later;
        ``actions``: the actions of the confirmed files, journaled with them."""
        by_dir: dict[int, dict[str, tuple[int, int]]] = {}
        for f in confirmed:
            by_dir.setdefault(f.dir, {})[f.row.name] = (f.row.size, f.row.mtime_ns)
        with self.db.tx():
            for dir_id, files in by_dir.items():
                self.dirs.add_confirmed(dir_id, files)
                # list it once more: a file may have changed while it was in flight
                self.conn.execute("UPDATE dirs SET mtime_ns=-1 WHERE id=?", (dir_id,))
                self.conn.executemany(
                    "DELETE FROM files WHERE dir=? AND name=? AND batch=?",
                    ((dir_id, escape(n), batch) for n in files),
                )
            for dir_id, row in others:
                self.work.write(job, dir_id, [row])
            if confirmed:  # the job's life totals: they never go down
                self.conn.execute(
                    "INSERT INTO job_totals (job, files, bytes) VALUES (?, ?, ?) "
                    "ON CONFLICT (job) DO UPDATE SET files = files + excluded.files, "
                    "bytes = bytes + excluded.bytes",
                    (job, len(confirmed), sum(f.row.size for f in confirmed)),
                )
            if enroll:
                self.cleanup.enroll(job, enroll, now, batch, replace=True)
            if actions is not None:
                self.actions.record(job, batch, actions, now)
            self.conn.execute(
                "UPDATE batches SET state=?, reason=?, finished=? WHERE id=?",
                (state, reason, now, batch),
            )

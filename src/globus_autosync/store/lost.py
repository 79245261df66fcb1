"""What ``verify`` found: the latest audit of each job's destination, and the files the
destination lost after it confirmed them whose source is gone too (deleted by cleanup or by a
person), kept until a person says they know (``verify --forget-lost``); the job is ``failing``
meanwhile."""

from __future__ import annotations

from typing import NamedTuple

from globus_autosync.store.connection import Connection


class LostFile(NamedTuple):
    path: str
    reason: str
    found: float


class Audit(NamedTuple):
    finished: float
    confirmed: int
    missing: int
    different: int
    error: str | None


class Progress(NamedTuple):
    """A scheduled audit not finished yet: where it stands."""

    started: float
    after_dir: int
    dirs: int
    confirmed: int
    present: int
    missing: int
    different: int
    unknown: int


class Audits:
    """The latest audit of each job's destination (``verify``), and the scheduled one in
    progress (``verify_every``)."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def record(self, job_id: int, audit: Audit) -> None:
        with self.db.tx():
            self._record(job_id, audit)

    def _record(self, job_id: int, audit: Audit) -> None:
        self.db.conn.execute(
            "INSERT OR REPLACE INTO audits (job, finished, confirmed, missing, different, "
            "error) VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, *audit),
        )

    def latest(self, job_id: int) -> Audit | None:
        if not self.db.has_table("audits"):
            return None
        row = self.db.conn.execute(
            "SELECT finished, confirmed, missing, different, error FROM audits WHERE job=?",
            (job_id,),
        ).fetchone()
        return Audit(*row) if row else None

    def progress(self, job_id: int) -> Progress | None:
        if not self.db.has_table("audit_progress"):
            return None
        row = self.db.conn.execute(
            "SELECT started, after_dir, dirs, confirmed, present, missing, different, unknown "
            "FROM audit_progress WHERE job=?",
            (job_id,),
        ).fetchone()
        return Progress(*row) if row else None

    def advance(self, job_id: int, progress: Progress) -> None:
        """Where a scheduled audit stands, after a directory (its own transaction)."""
        with self.db.tx():
            self.db.conn.execute(
                "INSERT OR REPLACE INTO audit_progress (job, started, after_dir, dirs, confirmed, "
                "present, missing, different, unknown) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, *progress),
            )

    def finish(self, job_id: int, audit: Audit) -> None:
        """A scheduled audit ended: its result recorded, its progress gone, at once."""
        with self.db.tx():
            self._record(job_id, audit)
            self.db.conn.execute("DELETE FROM audit_progress WHERE job=?", (job_id,))


class LostFiles:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def record(self, job_id: int, lost: list[tuple[str, str]], now: float) -> None:
        with self.db.tx():
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO lost (job, path, reason, found) VALUES (?, ?, ?, ?)",
                [(job_id, path, reason, now) for path, reason in lost],
            )

    def current(self, job_id: int, limit: int = 20) -> list[LostFile]:
        if not self.db.has_table("lost"):
            return []
        rows = self.db.conn.execute(
            "SELECT path, reason, found FROM lost WHERE job=? ORDER BY found DESC, path LIMIT ?",
            (job_id, limit),
        )
        return [LostFile(*r) for r in rows]

    def count(self, job_id: int) -> int:
        if not self.db.has_table("lost"):
            return 0
        row = self.db.conn.execute("SELECT COUNT(*) FROM lost WHERE job=?", (job_id,))
        return int(row.fetchone()[0])

    def forget(self, job_id: int) -> int:
        with self.db.tx():
            return self.db.conn.execute("DELETE FROM lost WHERE job=?", (job_id,)).rowcount

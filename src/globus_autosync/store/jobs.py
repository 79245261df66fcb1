"""The jobs table, and what ``status`` counts of a job across the tables."""

from __future__ import annotations

from typing import NamedTuple

from globus_autosync.store.connection import Connection


class Counts(NamedTuple):
    done: int  # confirmed files
    done_bytes: int
    seen: int
    queued: int
    submitted: int
    failed: int
    skipped: int
    oldest_settled: float | None
    last_run: tuple[float, str, str] | None  # finished, result, summary


class Jobs:
    """Each job's id and when its tree was last walked whole."""

    def __init__(self, db: Connection) -> None:
        self.db = db
        self.conn = db.conn

    def life(self, job: int) -> tuple[int, int]:
        """Files and bytes the destination confirmed over the job's life (never less later)."""
        if not self.db.has_table("job_totals"):  # an older database, read by ``status``
            return 0, 0
        row = self.conn.execute("SELECT files, bytes FROM job_totals WHERE job=?", (job,))
        found = row.fetchone()
        return (int(found[0]), int(found[1])) if found else (0, 0)

    def find(self, name: str) -> int | None:
        row = self.conn.execute("SELECT id FROM jobs WHERE name=?", (name,)).fetchone()
        return int(row[0]) if row else None

    def ensure(self, name: str) -> int:
        """The job's id, adding the job if it is new."""
        found = self.find(name)
        if found is not None:
            return found
        with self.db.tx():
            self.conn.execute("INSERT OR IGNORE INTO jobs (name) VALUES (?)", (name,))
        return int(self.conn.execute("SELECT id FROM jobs WHERE name=?", (name,)).fetchone()[0])

    def last_full_scan(self, job: int) -> float:
        row = self.conn.execute("SELECT last_full_scan FROM jobs WHERE id=?", (job,)).fetchone()
        return float(row[0]) if row else 0.0

    def set_last_full_scan(self, job: int, when: float) -> None:
        with self.db.tx():
            self.conn.execute("UPDATE jobs SET last_full_scan=? WHERE id=?", (when, job))

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

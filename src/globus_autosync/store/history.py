"""The bounded history behind the status page's pictures (the ``history`` table): a row per job
per cycle, at most one per ``INTERVAL``, pruned after ``KEEP`` (at most once a day).

Written when a cycle is recorded, inside that transaction; read by the page (web/) read-only. A
database of an older version (read without upgrading it) has no ``history`` table: reads answer
nothing for it.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from globus_autosync.store.connection import Connection
from globus_autosync.store.jobs import Jobs

INTERVAL = 300.0  # at most a row per job per 5 minutes
KEEP = 30 * 86400.0  # rows older than 30 days are pruned
PRUNE_EVERY = 86400.0  # at most once a day
_PRUNED_KEY = "history_pruned"


class HistoryRow(NamedTuple):
    at: float
    confirmed_files: int
    confirmed_bytes: int
    lag: float
    free_bytes: int | None


class History:
    """Every statement about the page's history, and the batches it is drawn from."""

    def __init__(self, db: Connection, jobs: Jobs) -> None:
        self.conn = db.conn
        self.jobs = jobs

    def note(self, job: int, now: float, free_bytes: int | None = None) -> None:
        """One row for this job unless it has one younger than ``INTERVAL``; prune once a day.
        Runs inside the caller's write transaction."""
        conn = self.conn
        last = conn.execute("SELECT MAX(at) FROM history WHERE job=?", (job,)).fetchone()[0]
        if last is not None and 0 <= now - last < INTERVAL:
            return
        c = self.jobs.counts(job)
        lag = max(0.0, now - c.oldest_settled) if c.oldest_settled is not None else 0.0
        conn.execute(
            "INSERT INTO history (job, at, confirmed_files, confirmed_bytes, lag, free_bytes, "
            "queued, in_flight, failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job, now, c.done, c.done_bytes, lag, free_bytes, c.queued, c.submitted, c.failed),
        )
        row = conn.execute("SELECT value FROM meta WHERE key=?", (_PRUNED_KEY,)).fetchone()
        if row is None or now - float(row[0]) >= PRUNE_EVERY:
            conn.execute("DELETE FROM history WHERE at < ?", (now - KEEP,))
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_PRUNED_KEY, repr(now))
            )

    def rows(self, job: int, since: float) -> list[HistoryRow]:
        """A job's rows since ``since``, oldest first (none in a database without the table)."""
        try:
            found = self.conn.execute(
                "SELECT at, confirmed_files, confirmed_bytes, lag, free_bytes FROM history "
                "WHERE job=? AND at >= ? ORDER BY at",
                (job, since),
            ).fetchall()
        except sqlite3.OperationalError:  # no such table: an older database, read as it is
            return []
        return [HistoryRow(*r) for r in found]

    def confirmed(self, job: int, since: float, step: float) -> dict[int, tuple[int, int]]:
        """Files and bytes of the batches that succeeded since ``since``, by slot of ``step``
        seconds (slot 0 begins at ``since``)."""
        found = self.conn.execute(
            "SELECT CAST((finished - ?) / ? AS INTEGER) AS slot, SUM(files), SUM(bytes) "
            "FROM batches WHERE job=? AND state='succeeded' AND finished >= ? GROUP BY slot",
            (since, step, job, since),
        ).fetchall()
        return {int(s): (int(f), int(b)) for s, f, b in found}

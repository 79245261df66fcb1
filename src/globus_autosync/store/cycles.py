"""The record of each job's cycles (the ``runs`` table): when each began and ended, how it
ended and its summary; the last thousand of a job are kept."""

from __future__ import annotations

from typing import NamedTuple

from globus_autosync.store.connection import Connection
from globus_autosync.store.history import History

GOOD_RESULTS = ("ok", "partial")  # a cycle that ran to its end (some files may have failed)


class CycleRow(NamedTuple):
    finished: float
    result: str
    summary: str


class CycleLog:
    """Every statement about the cycles a job ran."""

    def __init__(self, db: Connection, history: History) -> None:
        self.db = db
        self.conn = db.conn
        self.history = history

    def record(
        self,
        job: int,
        started: float,
        finished: float,
        full: bool,
        result: str,
        summary: str,
        free_bytes: int | None = None,
    ) -> None:
        """A cycle's record, and (at most every 5 minutes) a row of the page's history."""
        with self.db.tx():
            self.history.note(job, finished, free_bytes)
            self.conn.execute(
                "INSERT INTO runs (job, started, finished, full, result, summary) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job, started, finished, int(full), result, summary),
            )
            # keep the last thousand cycles of a job
            self.conn.execute(
                "DELETE FROM runs WHERE job=? AND id <= "
                "(SELECT id FROM runs WHERE job=? ORDER BY id DESC LIMIT 1 OFFSET 1000)",
                (job, job),
            )

    def times(self, job: int) -> tuple[float | None, float | None]:
        """When the last successful cycle ended, and how long the last cycle took."""
        ok = self.conn.execute(
            "SELECT MAX(finished) FROM runs WHERE job=? AND result='ok'", (job,)
        ).fetchone()[0]
        last = self.conn.execute(
            "SELECT finished - started FROM runs WHERE job=? ORDER BY id DESC LIMIT 1", (job,)
        ).fetchone()
        return ok, (last[0] if last else None)

    def recent(self, job: int, n: int) -> list[CycleRow]:
        rows = self.conn.execute(
            "SELECT finished, result, summary FROM runs WHERE job=? ORDER BY id DESC LIMIT ?",
            (job, n),
        )
        return [CycleRow(*r) for r in rows]

    def last_good(self, job: int) -> float | None:
        """When the last cycle that ran to its end ended."""
        marks = ",".join("?" * len(GOOD_RESULTS))
        row = self.conn.execute(
            f"SELECT MAX(finished) FROM runs WHERE job=? AND result IN ({marks})",
            (job, *GOOD_RESULTS),
        ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def first(self, job: int) -> float | None:
        """When the job's first recorded cycle ended."""
        row = self.conn.execute("SELECT MIN(finished) FROM runs WHERE job=?", (job,)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

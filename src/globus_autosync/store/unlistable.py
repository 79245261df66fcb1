"""The directories of a job's source that its latest walk could not list (a permission, an I/O
error, a name the service refuses), and for how many walks in a row: shown by ``status`` and
health for as long as they last, never only as a count in one run's summary."""

from __future__ import annotations

from typing import NamedTuple

from globus_autosync.store.connection import Connection


class UnlistableDir(NamedTuple):
    path: str
    reason: str
    since: float
    cycles: int


class UnlistableDirs:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def record(self, job_id: int, seen: dict[str, str], now: float) -> None:
        """What a walk that saw the tree whole found unlistable (path -> reason): the rest is
        listable again."""
        conn = self.db.conn
        known = {r[0] for r in conn.execute("SELECT path FROM unlistable WHERE job=?", (job_id,))}
        if not seen and not known:
            return  # the usual case: nothing to write
        with self.db.tx():
            gone = known - seen.keys()
            conn.executemany(
                "DELETE FROM unlistable WHERE job=? AND path=?", [(job_id, p) for p in gone]
            )
            conn.executemany(
                "INSERT INTO unlistable (job, path, reason, since, cycles) VALUES (?, ?, ?, ?, 1) "
                "ON CONFLICT (job, path) DO UPDATE SET reason=excluded.reason, "
                "cycles=cycles + 1",
                [(job_id, path, reason, now) for path, reason in seen.items()],
            )

    def current(self, job_id: int, limit: int = 20) -> list[UnlistableDir]:
        if not self.db.has_table("unlistable"):
            return []
        rows = self.db.conn.execute(
            "SELECT path, reason, since, cycles FROM unlistable WHERE job=? "
            "ORDER BY cycles DESC, path LIMIT ?",
            (job_id, limit),
        )
        return [UnlistableDir(*r) for r in rows]

    def count(self, job_id: int) -> int:
        if not self.db.has_table("unlistable"):
            return 0
        row = self.db.conn.execute(
            "SELECT COUNT(*) FROM unlistable WHERE job=?", (job_id,)
        ).fetchone()
        return int(row[0])

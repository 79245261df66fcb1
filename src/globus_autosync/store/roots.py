"""The file system each job's source (and local destination) root was on when it was last
accepted: its device number and type. A share that is not mounted leaves its mount point, an
empty directory of another file system, which must never be read as "every file was deleted"."""

from __future__ import annotations

from typing import NamedTuple

from globus_autosync.store.connection import Connection


class Root(NamedTuple):
    path: str
    device: int
    fstype: str


class Roots:
    def __init__(self, db: Connection) -> None:
        self.db = db

    def get(self, job_id: int, side: str) -> Root | None:
        if not self.db.has_table("roots"):
            return None
        row = self.db.conn.execute(
            "SELECT path, device, fstype FROM roots WHERE job=? AND side=?", (job_id, side)
        ).fetchone()
        return Root(*row) if row else None

    def accept(self, job_id: int, side: str, root: Root) -> None:
        """Record the root's file system as the one it is meant to be on."""
        with self.db.tx():
            self.db.conn.execute(
                "INSERT OR REPLACE INTO roots (job, side, path, device, fstype) "
                "VALUES (?, ?, ?, ?, ?)",
                (job_id, side, *root),
            )

    def forget(self, job_id: int) -> None:
        with self.db.tx():
            self.db.conn.execute("DELETE FROM roots WHERE job=?", (job_id,))

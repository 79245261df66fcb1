"""The records of health and alerts: files that keep failing, the last known state of a Globus
job's collections, and what the last alert about a job said.

A database of schema version 2 (read by ``status`` without upgrading it) has no ``alerts`` or
``collections`` table: reads answer nothing for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from globus_autosync.store.connection import Connection


@dataclass(frozen=True, slots=True)
class CollectionRow:
    """What was last seen of one of a job's collections."""

    job: str
    role: str  # source, destination
    collection: str
    name: str | None = None
    gcp: bool = False
    doc_problem: str | None = None
    problem: str | None = None
    checked: float = 0.0

    @property
    def label(self) -> str:
        return (
            f"{self.name!r} ({self.role} collection {self.collection})"
            if self.name
            else (f"{self.role} collection {self.collection}")
        )


@dataclass(frozen=True, slots=True)
class AlertRow:
    """What was last said about a job, and the message still owed."""

    job: str
    announced: str = "ok"
    announced_at: float = 0.0
    history: dict[str, float] = field(default_factory=dict)
    pending: dict[str, Any] | None = None
    attempts: int = 0
    next_try: float = 0.0


class AlertBrief(NamedTuple):
    announced: str
    announced_at: float
    pending: bool
    next_try: float


class HealthRecords:
    """Every statement about health and alerts."""

    def __init__(self, db: Connection) -> None:
        self.db = db
        self.conn = db.conn

    def stubborn_failures(self, job: int, attempts: int) -> tuple[int, str | None]:
        """How many failed files have failed at least ``attempts`` times, and one example
        (``name: reason``) of the most recent."""
        n = self.conn.execute(
            "SELECT COUNT(*) FROM files WHERE job=? AND state='failed' AND attempts>=?",
            (job, attempts),
        ).fetchone()[0]
        if not n:
            return 0, None
        name, reason = self.conn.execute(
            "SELECT name, reason FROM files WHERE job=? AND state='failed' AND attempts>=? "
            "ORDER BY since DESC LIMIT 1",
            (job, attempts),
        ).fetchone()
        return int(n), f"{name}: {reason or 'no reason given'}"

    def skipped_for(self, job: int, reasons: tuple[str, ...]) -> tuple[int, str | None]:
        """How many files are skipped for one of ``reasons``, and one example (``name: reason``)
        of the most recent."""
        marks = ", ".join("?" * len(reasons))
        where = f"job=? AND state='skipped' AND reason IN ({marks})"
        n = self.conn.execute(f"SELECT COUNT(*) FROM files WHERE {where}", (job, *reasons))
        count = int(n.fetchone()[0])
        if not count:
            return 0, None
        name, reason = self.conn.execute(
            f"SELECT name, reason FROM files WHERE {where} ORDER BY since DESC LIMIT 1",
            (job, *reasons),
        ).fetchone()
        return count, f"{name}: {reason}"

    def collections(self, job: str) -> list[CollectionRow]:
        if not self.db.has_table("collections"):
            return []
        rows = self.conn.execute(
            "SELECT job, role, collection, name, gcp, doc_problem, problem, checked "
            "FROM collections WHERE job=? ORDER BY role DESC",
            (job,),
        )
        return [CollectionRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7]) for r in rows]

    def save_collections(self, rows: list[CollectionRow]) -> None:
        with self.db.tx():
            self.conn.executemany(
                "INSERT OR REPLACE INTO collections "
                "(job, role, collection, name, gcp, doc_problem, problem, checked) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.job,
                        r.role,
                        r.collection,
                        r.name,
                        int(r.gcp),
                        r.doc_problem,
                        r.problem,
                        r.checked,
                    )
                    for r in rows
                ],
            )

    def alert_brief(self, job: str) -> AlertBrief | None:
        """Enough of ``alert_row`` to see that nothing is to be said (without decoding JSON: the
        json module is not imported by a quiet run)."""
        row = self.conn.execute(
            "SELECT announced, announced_at, pending IS NOT NULL, next_try FROM alerts WHERE job=?",
            (job,),
        ).fetchone()
        return AlertBrief(row[0], row[1], bool(row[2]), row[3]) if row else None

    def alert_row(self, job: str) -> AlertRow | None:
        """What was last said about a job (inside the caller's transaction, to claim a message)."""
        import json  # here: json costs a quiet run about 1.4 ms (it reads only alert_brief)

        row = self.conn.execute(
            "SELECT job, announced, announced_at, history, pending, attempts, next_try FROM alerts "
            "WHERE job=?",
            (job,),
        ).fetchone()
        if row is None:
            return None
        pending = json.loads(row[4]) if row[4] else None
        return AlertRow(row[0], row[1], row[2], json.loads(row[3]), pending, row[5], row[6])

    def save_alert_row(self, row: AlertRow) -> None:
        """Within the caller's transaction."""
        import json  # here: as in alert_row

        self.conn.execute(
            "INSERT OR REPLACE INTO alerts "
            "(job, announced, announced_at, history, pending, attempts, next_try) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                row.job,
                row.announced,
                row.announced_at,
                json.dumps(row.history),
                json.dumps(row.pending) if row.pending is not None else None,
                row.attempts,
                row.next_try,
            ),
        )

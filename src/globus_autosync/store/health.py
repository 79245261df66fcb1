"""The SQL of health and alerts (issue 12): recent runs, files that keep failing, the last known
state of a Globus job's collections, and what the last alert about a job said.

A database of schema version 2 (read by ``status`` without upgrading it) has no ``alerts`` or
``collections`` table: reads answer nothing for it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from globus_autosync.store import Store

GOOD_RESULTS = ("ok", "partial")  # a cycle that ran to its end (some files may have failed)


# plain classes, not dataclasses: a cron run with alerts imports this module, and a dataclass
# costs most of a millisecond to define
class RunRow(NamedTuple):
    finished: float
    result: str
    summary: str


class CollectionRow:
    __slots__ = ("checked", "collection", "doc_problem", "gcp", "job", "name", "problem", "role")

    def __init__(
        self,
        job: str,
        role: str,  # source, destination
        collection: str,
        name: str | None = None,
        gcp: bool = False,
        doc_problem: str | None = None,
        problem: str | None = None,
        checked: float = 0.0,
    ) -> None:
        self.job, self.role, self.collection, self.name = job, role, collection, name
        self.gcp, self.doc_problem, self.problem, self.checked = gcp, doc_problem, problem, checked

    def copy(self) -> CollectionRow:
        return CollectionRow(self.job, self.role, self.collection, self.name, self.gcp,
                             self.doc_problem, self.problem, self.checked)  # fmt: skip

    @property
    def label(self) -> str:
        return (
            f"{self.name!r} ({self.role} collection {self.collection})"
            if self.name
            else (f"{self.role} collection {self.collection}")
        )


class AlertRow:
    __slots__ = ("announced", "announced_at", "attempts", "history", "job", "next_try", "pending")

    def __init__(
        self,
        job: str,
        announced: str = "ok",
        announced_at: float = 0.0,
        history: dict[str, float] | None = None,
        pending: dict[str, Any] | None = None,
        attempts: int = 0,
        next_try: float = 0.0,
    ) -> None:
        self.job, self.announced, self.announced_at = job, announced, announced_at
        self.history = history if history is not None else {}
        self.pending, self.attempts, self.next_try = pending, attempts, next_try


def _has(store: Store, table: str) -> bool:
    row = store.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
    ).fetchone()
    return row is not None


def recent_runs(store: Store, job: int, n: int) -> list[RunRow]:
    rows = store.conn.execute(
        "SELECT finished, result, summary FROM runs WHERE job=? ORDER BY id DESC LIMIT ?", (job, n)
    )
    return [RunRow(*r) for r in rows]


def last_good_run(store: Store, job: int) -> float | None:
    marks = ",".join("?" * len(GOOD_RESULTS))
    row = store.conn.execute(
        f"SELECT MAX(finished) FROM runs WHERE job=? AND result IN ({marks})", (job, *GOOD_RESULTS)
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def first_run(store: Store, job: int) -> float | None:
    row = store.conn.execute("SELECT MIN(finished) FROM runs WHERE job=?", (job,)).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def stubborn_failures(store: Store, job: int, attempts: int) -> tuple[int, str | None]:
    """How many failed files have failed at least ``attempts`` times, and one example
    (``name: reason``) of the most recent."""
    n = store.conn.execute(
        "SELECT COUNT(*) FROM files WHERE job=? AND state='failed' AND attempts>=?", (job, attempts)
    ).fetchone()[0]
    if not n:
        return 0, None
    name, reason = store.conn.execute(
        "SELECT name, reason FROM files WHERE job=? AND state='failed' AND attempts>=? "
        "ORDER BY since DESC LIMIT 1",
        (job, attempts),
    ).fetchone()
    return int(n), f"{name}: {reason or 'no reason given'}"


def collections(store: Store, job: str) -> list[CollectionRow]:
    if not _has(store, "collections"):
        return []
    rows = store.conn.execute(
        "SELECT job, role, collection, name, gcp, doc_problem, problem, checked FROM collections "
        "WHERE job=? ORDER BY role DESC",
        (job,),
    )
    return [CollectionRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7]) for r in rows]


def save_collections(store: Store, rows: list[CollectionRow]) -> None:
    with store.tx():
        store.conn.executemany(
            "INSERT OR REPLACE INTO collections "
            "(job, role, collection, name, gcp, doc_problem, problem, checked) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.job, r.role, r.collection, r.name, int(r.gcp), r.doc_problem, r.problem, r.checked)
             for r in rows],
        )  # fmt: skip


class AlertBrief(NamedTuple):
    announced: str
    announced_at: float
    pending: bool
    next_try: float


def alert_brief(store: Store, job: str) -> AlertBrief | None:
    """Enough of ``alert_row`` to see that nothing is to be said (without decoding JSON: the
    json module is not imported by a quiet run)."""
    row = store.conn.execute(
        "SELECT announced, announced_at, pending IS NOT NULL, next_try FROM alerts WHERE job=?",
        (job,),
    ).fetchone()
    return AlertBrief(row[0], row[1], bool(row[2]), row[3]) if row else None


def alert_row(store: Store, job: str) -> AlertRow | None:
    """What was last said about a job (inside the caller's transaction, to claim a message)."""
    import json

    row = store.conn.execute(
        "SELECT job, announced, announced_at, history, pending, attempts, next_try FROM alerts "
        "WHERE job=?",
        (job,),
    ).fetchone()
    if row is None:
        return None
    pending = json.loads(row[4]) if row[4] else None
    return AlertRow(row[0], row[1], row[2], json.loads(row[3]), pending, row[5], row[6])


def save_alert_row(store: Store, row: AlertRow) -> None:
    """Within the caller's transaction."""
    import json

    store.conn.execute(
        "INSERT OR REPLACE INTO alerts "
        "(job, announced, announced_at, history, pending, attempts, next_try) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (row.job, row.announced, row.announced_at, json.dumps(row.history),
         json.dumps(row.pending) if row.pending is not None else None, row.attempts,
         row.next_try),
    )  # fmt: skip

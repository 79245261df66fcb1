"""The store's side of actions (a flow run and/or a local command per finished batch or dataset):
the journal rows, the files of each manifest, and what ``status`` and ``tasks`` show. Only SQL;
the rules are in the ``actions`` package.

A row of ``actions`` is written before anything starts, in the transaction that confirms its
files; each of its two legs (``flow_state``, ``cmd_state``) goes pending -> starting (journaled:
it may have started) -> running -> succeeded | failed.
"""

from __future__ import annotations

import fnmatch
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from globus_autosync.model.plan import FAILED, QUEUED, SEEN, SUBMITTED
from globus_autosync.store.connection import Connection
from globus_autosync.store.names import escape, unescape

PENDING, STARTING, RUNNING, SUCCEEDED = "pending", "starting", "running", "succeeded"
ACTION_FAILED, COLLECTING = "failed", "collecting"
OPEN = (PENDING, RUNNING)  # an action whose legs still have work
LEGS = ("flow", "cmd")
_BLOCKING = (SEEN, QUEUED, SUBMITTED, FAILED)  # a dataset with these files is not finished


class ConfirmedFile(NamedTuple):
    """A confirmed file of an action's manifest."""

    dir: int
    name: str
    size: int
    mtime_ns: int
    path: str  # relative to the source


class ActionRecord(NamedTuple):  # a tuple: every run's start defines it (a dataclass: 0.5 ms more)
    """What the actions of a batch's confirmed files record, in the transaction that confirms
    them: one action for the batch (``per_batch``), else the files added to the datasets of
    their directories (``dir_paths``: those directories' paths; ``marker``: the pattern of a
    file that finishes a dataset)."""

    files: Sequence[ConfirmedFile]
    per_batch: bool
    legs: tuple[bool, bool]  # a flow run, a command
    marker: str | None
    dir_paths: Mapping[int, str]


_COLS = (
    "id, job, kind, batch, dir, dataset, part, parts, state, tag, created, changed, marker, "
    "files, bytes, flow_state, run_id, cmd_state, pid, exit_code, attempt, tries, next_try, "
    "started, finished, reason"
)


class ActionRow(NamedTuple):
    id: int
    job: int
    kind: str
    batch: int | None
    dir: int | None
    dataset: str | None
    part: int
    parts: int
    state: str
    tag: str
    created: float
    changed: float
    marker: bool
    files: int
    bytes: int
    flow_state: str | None
    run_id: str | None
    cmd_state: str | None
    pid: int | None
    exit_code: int | None
    attempt: int
    tries: int
    next_try: float
    started: float | None
    finished: float | None
    reason: str | None

    def leg(self, leg: str) -> str | None:
        return self.flow_state if leg == "flow" else self.cmd_state


def _row(r: tuple[object, ...]) -> ActionRow:
    values = list(r)
    values[12] = bool(values[12])
    if isinstance(values[5], str):
        values[5] = unescape(values[5])
    return ActionRow(*values)  # type: ignore[arg-type]


def overall(flow_state: str | None, cmd_state: str | None) -> str:
    """An action's state from its legs: pending while a leg waits to start, running while one
    runs, then failed if a leg failed, else succeeded."""
    legs = [s for s in (flow_state, cmd_state) if s is not None]
    if any(s in (PENDING, STARTING) for s in legs):
        return PENDING if not any(s == RUNNING for s in legs) else RUNNING
    if any(s == RUNNING for s in legs):
        return RUNNING
    return ACTION_FAILED if any(s == ACTION_FAILED for s in legs) else SUCCEEDED


def new_tag() -> str:
    return f"autosync-{uuid.uuid4()}"


class ActionJournal:
    """Every statement about actions: the journal rows and the files of each manifest."""

    def __init__(self, db: Connection) -> None:
        self.db = db
        self.conn = db.conn

    def _has_actions(self) -> bool:
        return self.db.has_table("actions")

    # -- recording (inside the transaction that confirms the files) -------------------------
    def record(self, job: int, batch: int, record: ActionRecord, now: float) -> None:
        """The actions of a batch's confirmed files, in the caller's transaction."""
        if record.per_batch:
            self.record_batch(job, batch, record.files, now, record.legs)
        else:
            self.record_datasets(job, record.files, now, record.marker, record.dir_paths)

    def record_batch(
        self,
        job: int,
        batch: int,
        files: Sequence[ConfirmedFile],
        now: float,
        legs: tuple[bool, bool],
    ) -> None:
        """One action for the confirmed files of a batch, pending."""
        if not files:
            return
        flow, cmd = (PENDING if legs[0] else None), (PENDING if legs[1] else None)
        cur = self.conn.execute(
            "INSERT INTO actions (job, kind, batch, state, tag, created, changed, files, bytes, "
            "flow_state, cmd_state) VALUES (?, 'batch', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job,
                batch,
                PENDING,
                new_tag(),
                now,
                now,
                len(files),
                sum(f.size for f in files),
                flow,
                cmd,
            ),
        )
        self._add_files(int(cur.lastrowid or 0), files)

    def record_datasets(
        self,
        job: int,
        files: Sequence[ConfirmedFile],
        now: float,
        marker: str | None,
        rel: Mapping[int, str],
    ) -> None:
        """Add confirmed files to the dataset (directory) each lies in: the one still
        collecting, or a new one; ``rel``: the directories' paths."""
        by_dir: dict[int, list[ConfirmedFile]] = {}
        for f in files:
            by_dir.setdefault(f.dir, []).append(f)
        for dir_id, group in by_dir.items():
            row = self.conn.execute(
                "SELECT id FROM actions WHERE job=? AND dir=? AND state=?",
                (job, dir_id, COLLECTING),
            ).fetchone()
            if row is None:
                cur = self.conn.execute(
                    "INSERT INTO actions (job, kind, dir, dataset, state, tag, created, changed) "
                    "VALUES (?, 'dataset', ?, ?, ?, ?, ?, ?)",
                    (job, dir_id, escape(rel.get(dir_id, "")), COLLECTING, new_tag(), now, now),
                )
                action = int(cur.lastrowid or 0)
            else:
                action = int(row[0])
            self._add_files(action, group)
            hit = marker is not None and any(fnmatch.fnmatchcase(f.name, marker) for f in group)
            self.conn.execute(
                "UPDATE actions SET changed=:now, marker=MAX(marker, :hit), "
                "files=(SELECT COUNT(*) FROM action_files WHERE action=:a), "
                "bytes=(SELECT COALESCE(SUM(size), 0) FROM action_files WHERE action=:a) "
                "WHERE id=:a",
                {"now": now, "hit": int(hit), "a": action},
            )

    def _add_files(self, action: int, files: Iterable[ConfirmedFile]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO action_files (action, dir, name, path, size, mtime_ns) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ((action, d, escape(n), escape(p), s, m) for d, n, s, m, p in files),
        )

    # -- datasets ---------------------------------------------------------------------------
    def collecting(self, job: int) -> list[ActionRow]:
        if not self._has_actions():
            return []
        return self._actions("WHERE job=? AND state=? ORDER BY id", (job, COLLECTING))

    def dataset_blockers(self, dir_id: int, limit: int = 20) -> list[tuple[str, str]]:
        """(name, state) of files in a dataset's directory that keep it from being finished:
        settling, queued, in flight or failed."""
        marks = ",".join("?" * len(_BLOCKING))
        rows = self.conn.execute(
            f"SELECT name, state FROM files WHERE dir=? AND state IN ({marks}) "
            "ORDER BY state, name LIMIT ?",
            (dir_id, *_BLOCKING, limit),
        )
        return [(unescape(r[0]), r[1]) for r in rows]

    def finish_dataset(self, action: int, legs: tuple[bool, bool], now: float) -> None:
        flow, cmd = (PENDING if legs[0] else None), (PENDING if legs[1] else None)
        with self.db.tx():
            self.conn.execute(
                "UPDATE actions SET state=?, flow_state=?, cmd_state=?, changed=? "
                "WHERE id=? AND state=?",
                (PENDING, flow, cmd, now, action, COLLECTING),
            )

    # -- the journal ------------------------------------------------------------------------
    def active(self, job: int) -> list[ActionRow]:
        if not self._has_actions():
            return []
        return self._actions("WHERE job=? AND state IN (?, ?) ORDER BY id", (job, *OPEN))

    def get(self, action: int) -> ActionRow | None:
        if not self._has_actions():
            return None
        found = self._actions("WHERE id=?", (action,))
        return found[0] if found else None

    def files(self, action: int) -> list[ConfirmedFile]:
        rows = self.conn.execute(
            "SELECT dir, name, size, mtime_ns, path FROM action_files WHERE action=? ORDER BY path",
            (action,),
        )
        return [ConfirmedFile(r[0], unescape(r[1]), r[2], r[3], unescape(r[4])) for r in rows]

    def update_leg(self, action: int, leg: str, state: str, **cols: object) -> ActionRow:
        """Set one leg's state (and other columns), and the action's state with it."""
        assert leg in LEGS
        with self.db.tx():
            row = self.get(action)
            assert row is not None
            flow = state if leg == "flow" else row.flow_state
            cmd = state if leg == "cmd" else row.cmd_state
            cols[f"{leg}_state"] = state
            cols["state"] = overall(flow, cmd)
            if cols["state"] in (SUCCEEDED, ACTION_FAILED) and "finished" not in cols:
                cols["finished"] = time.time()
            sets = ", ".join(f"{k}=?" for k in cols)
            self.conn.execute(f"UPDATE actions SET {sets} WHERE id=?", (*cols.values(), action))
            new = self.get(action)
        assert new is not None
        return new

    def note(self, action: int, **cols: object) -> None:
        with self.db.tx():
            sets = ", ".join(f"{k}=?" for k in cols)
            self.conn.execute(f"UPDATE actions SET {sets} WHERE id=?", (*cols.values(), action))

    def split(self, action: ActionRow, groups: list[list[ConfirmedFile]]) -> None:
        """A manifest too large for one flow run: the first group stays in this action, each
        other becomes an action of its own (part k of n), in one transaction, before any
        starts."""
        n = len(groups)
        with self.db.tx():
            self.conn.execute(
                "UPDATE actions SET part=1, parts=?, files=?, bytes=? WHERE id=?",
                (n, len(groups[0]), sum(f.size for f in groups[0]), action.id),
            )
            for k, group in enumerate(groups[1:], start=2):
                cur = self.conn.execute(
                    "INSERT INTO actions (job, kind, batch, dir, dataset, part, parts, state, tag, "
                    "created, changed, marker, files, bytes, flow_state, cmd_state) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        action.job,
                        action.kind,
                        action.batch,
                        action.dir,
                        action.dataset,
                        k,
                        n,
                        PENDING,
                        new_tag(),
                        action.created,
                        action.changed,
                        int(action.marker),
                        len(group),
                        sum(f.size for f in group),
                        action.flow_state,
                        action.cmd_state,
                    ),
                )
                new = int(cur.lastrowid or 0)
                self.conn.executemany(
                    "UPDATE action_files SET action=? WHERE action=? AND dir=? AND name=?",
                    ((new, action.id, f.dir, escape(f.name)) for f in group),
                )

    def retry(self, action: int) -> ActionRow:
        """Start a failed action again: its failed legs become pending, as attempt n + 1."""
        with self.db.tx():
            row = self.get(action)
            assert row is not None and row.state == ACTION_FAILED
            flow = PENDING if row.flow_state == ACTION_FAILED else row.flow_state
            cmd = PENDING if row.cmd_state == ACTION_FAILED else row.cmd_state
            self.conn.execute(
                "UPDATE actions SET state=?, flow_state=?, cmd_state=?, tag=?, attempt=attempt+1, "
                "tries=0, next_try=0, reason=NULL, finished=NULL, "
                "run_id=CASE WHEN ? THEN NULL ELSE run_id END, "
                "exit_code=CASE WHEN ? THEN NULL ELSE exit_code END, "
                "pid=CASE WHEN ? THEN NULL ELSE pid END WHERE id=?",
                (
                    overall(flow, cmd),
                    flow,
                    cmd,
                    new_tag(),
                    row.flow_state == ACTION_FAILED,
                    row.cmd_state == ACTION_FAILED,
                    row.cmd_state == ACTION_FAILED,
                    action,
                ),
            )
            new = self.get(action)
        assert new is not None
        return new

    # -- reporting --------------------------------------------------------------------------
    def counts(self, job: int) -> dict[str, int]:
        if not self._has_actions():
            return {}
        rows = self.conn.execute(
            "SELECT state, COUNT(*) FROM actions WHERE job=? GROUP BY state", (job,)
        )
        return {r[0]: r[1] for r in rows}

    def recent(self, job: int, limit: int) -> list[ActionRow]:
        if not self._has_actions():
            return []
        return self._actions("WHERE job=? ORDER BY id DESC LIMIT ?", (job, limit))

    def _actions(self, where: str, args: tuple[object, ...]) -> list[ActionRow]:
        rows = self.conn.execute(f"SELECT {_COLS} FROM actions {where}", args)
        return [_row(r) for r in rows]

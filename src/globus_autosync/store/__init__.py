"""The state database: one SQLite file for every job; the only package that writes SQL.
May import: errors, config, model; nothing above them.

``Store`` is the connection (``connection``) and one repository per family of tables:
``jobs``; ``dirs``, the directory trie and each directory's confirmed listing (encoded by
``codec``); ``files``, the rows of work in progress; ``batches``, a journal written before a
batch is submitted; ``cycles``, the record of each cycle; ``cleanup``; ``actions``; ``health``;
``heartbeats``, the pulse of the cycle in hand; ``roots``, the file system each job's root is on;
``unlistable``, the source's directories its latest walk could not list.
The tables, and the versions of the schema, are in ``schema``.
"""

from __future__ import annotations

import sqlite3
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from globus_autosync.store import codec, schema
from globus_autosync.store.actions import ActionJournal, ActionRow, ConfirmedFile
from globus_autosync.store.batches import Batches, BatchRow
from globus_autosync.store.cleanup import (
    Candidate,
    CleanupCandidates,
    CleanupTotals,
    Enrolled,
)
from globus_autosync.store.connection import (
    FILE_NAME,
    Connection,
    connect,
    connect_readonly,
    store_error,
)
from globus_autosync.store.cycles import CycleLog, CycleRow
from globus_autosync.store.dirs import Directories, DirRow, RawState
from globus_autosync.store.files import QueuedFile, WorkFiles
from globus_autosync.store.heartbeats import Heartbeats
from globus_autosync.store.history import History
from globus_autosync.store.jobs import Counts, Jobs
from globus_autosync.store.lost import Audit, Audits, LostFile, LostFiles, Progress
from globus_autosync.store.roots import Root, Roots
from globus_autosync.store.unlistable import UnlistableDir, UnlistableDirs

__all__ = [
    "FILE_NAME",
    "SCHEMA_VERSION",
    "ActionRow",
    "Audit",
    "BatchRow",
    "Candidate",
    "CleanupTotals",
    "ConfirmedFile",
    "Counts",
    "CycleRow",
    "DirRow",
    "Enrolled",
    "LostFile",
    "Progress",
    "QueuedFile",
    "RawState",
    "Root",
    "Store",
    "UnlistableDir",
    "codec",
    "store_error",
]

if TYPE_CHECKING:
    from globus_autosync.store.health import HealthRecords

SCHEMA_VERSION = schema.VERSION


class Store(Connection):
    """One connection to the state database, and its repositories."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        super().__init__(conn, path)
        self.jobs = Jobs(self)
        self.files = WorkFiles(self)
        self.dirs = Directories(self, self.files)
        self.history = History(self, self.jobs)
        self.cycles = CycleLog(self, self.history)
        self.cleanup = CleanupCandidates(self, self.dirs, self.files)
        self.actions = ActionJournal(self)
        self.batches = Batches(self, self.dirs, self.files, self.cleanup, self.actions)
        self.heartbeats = Heartbeats(self)
        self.roots = Roots(self)
        self.unlistable = UnlistableDirs(self)
        self.lost = LostFiles(self)
        self.audits = Audits(self)

    @cached_property
    def health(self) -> HealthRecords:
        # here: its records cost a quiet local run 1.3 ms (the module's own import time)
        from globus_autosync.store.health import HealthRecords

        return HealthRecords(self)

    @classmethod
    def open(cls, state_dir: Path) -> Store:
        """Open the database, creating it (and the state directory) if needed."""
        return cls(*connect(state_dir))

    @classmethod
    def open_readonly(cls, state_dir: Path) -> Store | None:
        """Open an existing database for reading; None if there is none yet."""
        opened = connect_readonly(state_dir)
        return cls(*opened) if opened is not None else None

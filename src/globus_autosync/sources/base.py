"""What every source shares: the ``Source`` protocol and what a walk answers (``Walked``); a
directory's listing, the tree of known directories, the walk's counts, the seam a walk hands each
listed directory to, change notices, and name helpers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Protocol

from globus_autosync.model.plan import DirPlan
from globus_autosync.store import DirRow, Store
from globus_autosync.store.names import escape

UNSENDABLE_UTF8 = "name is not valid UTF-8"
UNSENDABLE_NEWLINE = "name contains a newline"
SKIPPED_SYMLINK = "symbolic link (symlinks = skip)"
DANGLING_SYMLINK = "symbolic link to nothing"
SKIPPED_SPECIAL = "not a regular file"


@dataclass(frozen=True, slots=True)
class Subdir:
    name: str
    path: str  # the path to list it by (a followed link's own path)
    dev: int
    ino: int


@dataclass(slots=True)
class Listing:
    """One directory: sendable files, subdirectories and what was passed over."""

    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (size, mtime_ns)
    subdirs: list[Subdir] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # printable name -> reason


def printable(name: str) -> str:
    """A name (or a path) as the log, the store and every report show it: an undecodable byte is
    \\xNN, a newline \\n, and two names are never shown alike (``store.names``)."""
    return escape(name)


def unsendable(name: str) -> str | None:
    """Why a name cannot be sent through Globus (its JSON carries only UTF-8, and a newline
    breaks the lines of its listings), or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return UNSENDABLE_UTF8
    if "\n" in name or "\r" in name:
        return UNSENDABLE_NEWLINE
    return None


class Excluder:
    """Glob patterns matched against a name and against its path relative to the source; and
    whether a name is checked for what Globus can carry (``check_names``: a local transport
    writes any name the file system holds, byte for byte)."""

    def __init__(self, patterns: tuple[str, ...], check_names: bool = True) -> None:
        self.patterns = patterns
        self.check_names = check_names

    def __call__(self, name: str, relpath: str) -> bool:
        return any(fnmatchcase(name, p) or fnmatchcase(relpath, p) for p in self.patterns)


def names_checked(transport: str) -> bool:
    """Whether a job's names are checked for Globus (any transport but a local one)."""
    return transport != "local"


def join(relpath: str, name: str) -> str:
    return f"{relpath}/{name}" if relpath else name


@dataclass(slots=True)
class WalkStats:
    files: int = 0  # files listed
    dirs: int = 0  # directories visited
    listed: int = 0  # directories listed
    changed: int = 0
    skipped: int = 0
    empty_dirs: list[int] = field(default_factory=list)  # listed empty, not yet made
    unreadable: set[int] = field(default_factory=set)  # directories that could not be read
    problems: dict[str, str] = field(default_factory=dict)  # their printable paths -> why


def relpaths(store: Store, job_id: int) -> dict[int, str]:
    """Every known directory of a job, by id: its path relative to the source ("" for its
    root), read without writing (``DirTree`` keeps the same, and more, for a walk)."""
    rel: dict[int, str] = {}
    for row in store.dirs.rows(job_id):  # parents before children
        rel[row.id] = join(rel.get(row.parent, ""), row.name) if row.parent else ""
    return rel


class DirTree:
    """The job's known directories: ids, relative paths, children. O(directories) memory."""

    def __init__(self, store: Store, job_id: int) -> None:
        self.store, self.job_id = store, job_id
        self.rows: dict[int, DirRow] = {}
        self.rel: dict[int, str] = {}
        self.children: dict[int, dict[str, int]] = {}
        for row in store.dirs.rows(job_id):
            self._add(row)
        roots = self.children.get(0, {})
        self.root = roots[""] if "" in roots else self.add(0, "")

    def _add(self, row: DirRow) -> None:
        self.rows[row.id] = row
        self.rel[row.id] = join(self.rel[row.parent], row.name) if row.parent else ""
        self.children.setdefault(row.parent, {})[row.name] = row.id

    def add(self, parent: int, name: str) -> int:
        dir_id = self.store.dirs.add(self.job_id, parent, name)
        self._add(DirRow(dir_id, parent, name, -1, 0, False))
        return dir_id

    def forget(self, dir_id: int) -> None:
        """A directory the store no longer holds (removed by cleanup)."""
        row = self.rows.pop(dir_id)
        del self.rel[dir_id]
        self.children.get(row.parent, {}).pop(row.name, None)


# apply(dir id, plan, listing, mtime_ns to record (-1: racy), inode) after each listed directory.
# With plan=True the listing carries the subdirectories and the entries passed over, not the
# files (a parallel walk does not send a million names back; the plan says what changed); with
# plan=False (``baseline``) the plan holds only the listing's digest and the listing has every
# file.
Apply = Callable[[int, DirPlan, Listing, int, int], None]


class Notices(Protocol):
    """Change notices for a walk's directories, by name (``sources.local.inotify.DirWatch``)."""

    def begin(self) -> None:
        """Take in what was noticed since the last walk (called once, before the walk)."""

    def watch(self, dir_id: int, path: str) -> None:
        """Start noticing changes in a directory, if not yet (before it is stat'ed)."""

    def names(self, dir_id: int, st: os.stat_result) -> frozenset[str] | None:
        """The names changed in a directory since the last walk, or None if the notices cannot
        vouch for it (then it is listed if its mtime moved, as without notices)."""

    def moved(self, st: os.stat_result) -> bool:
        """Whether a directory the notices cannot vouch for changed since the walk before
        (its ctime): then it is listed even if its mtime is the one the store holds."""


@dataclass(slots=True)
class Walked:
    """What a walk of the source saw, and whether it saw it whole."""

    stats: WalkStats
    stopped: bool = False  # asked to stop, or could not go on: the tree was not seen whole
    problem: str | None = None  # why it could not go on (the source's service unreachable)


class Source(Protocol):
    kind: str
    # a file's own mtime may vouch that it settled (plan.settled): true of the local clock,
    # not of a remote collection's
    trust_mtime: bool

    def ready(self) -> None:
        """Raise JobError when the source cannot be walked at all."""

    def list_dir(self, rel: str) -> Listing:
        """One directory (relative to the source's root): files, subdirectories, and the entries
        passed over with why."""

    def walk(
        self,
        tree: DirTree,
        apply: Apply,
        full: bool,
        now: float,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[WalkStats], None] | None = None,
        *,
        plan: bool = True,
    ) -> Walked:
        """List the tree against the store; ``apply`` after each directory listed (with its
        plan; with ``plan=False`` the listing's files themselves, for ``baseline``)."""

"""One directory's share of a walk: list it, compare it with the store's confirmed listing, plan.

A ``Task`` carries what the store knows of one directory (its confirmed listing, still encoded,
the digest of its last listing that needed nothing, and its rows of work in progress); ``work``
lists the directory and answers with a ``Result``: the plan and the subdirectories, a few bytes
when nothing changed. No database here: ``work`` runs in the walk's own process (``Inline``) or
in a worker process (``parwalk``).

The digest spares a no-change full walk most of its Python work per file: a directory with no
work in progress whose listing hashes as it did when it last needed nothing needs nothing now,
without decoding and comparing its confirmed listing. A directory lists in the same order as
long as it does not change; a listing in another order merely misses the shortcut. The store
forgets a directory's digest whenever its confirmed listing changes.

An incremental walk does less for a directory whose mtime moved (names were added, removed or
renamed: a file's content never moves it; rewrites in place are the full walk's job). One of
``QUICK_FROM`` confirmed files or more is listed by name (``scan.list_changes``): only new names
and work in progress are looked at, against the confirmed names read into a table of hashes,
never a dict of a million files. A directory whose change notices are trusted (``Task.noticed``:
``watch`` on Linux) is not listed at all: only the names noticed and work in progress are looked
at (``scan.look_at``). Both answer a ``partial`` or by-name Result in this process only.
A full walk of such a directory stats every entry, but compares it with the confirmed listing
held as arrays by position (``codec.index``), keeping only what differs.
"""

from __future__ import annotations

import marshal
import time
from collections.abc import Iterable
from dataclasses import dataclass

from globus_autosync import codec
from globus_autosync.plan import SKIPPED, DirPlan, Pending, plan_dir
from globus_autosync.scan import (
    Excluder,
    Subdir,
    list_against,
    list_changes,
    list_dir,
    look_at,
)

QUICK_FROM = 10_000  # confirmed files from which a changed directory is listed by name only


@dataclass(frozen=True)
class Setup:
    """What every directory of one walk is listed and planned with."""

    patterns: tuple[str, ...]
    follow: bool
    plan: bool  # False: no plan, the files themselves are wanted (``baseline``)
    full: bool
    now: float
    settle: float


@dataclass(frozen=True)
class Task:
    dir_id: int
    path: str
    rel: str
    done: bytes | None  # the confirmed listing, encoded (codec)
    pending: dict[str, Pending]
    digest: bytes | None = None  # of the last listing that needed nothing
    noticed: frozenset[str] | None = None  # names changed, by trusted notices: look at those only
    same: bool = True  # the directory has the inode it was last listed with (not replaced)


@dataclass(frozen=True)
class Result:
    error: str | None  # the directory could not be listed: why
    listed_ns: int = 0  # the clock just after the listing (for the racy rule)
    nfiles: int = 0
    plan: DirPlan | None = None  # None: nothing to do
    skipped: dict[str, str] | None = None
    subdirs: tuple[Subdir, ...] = ()
    files: dict[str, tuple[int, int]] | None = None  # only when Setup.plan is false
    partial: bool = False  # only the names noticed were looked at: subdirs are the new ones


def listing_digest(files: dict[str, tuple[int, int]]) -> bytes:
    """A listing's fingerprint: its names, sizes and mtimes, in the order the directory gave
    them (marshal version 2 writes no back-references, so equal listings give equal bytes)."""
    import hashlib  # here: a quiet incremental run lists nothing and needs no OpenSSL

    return hashlib.blake2b(marshal.dumps(files, 2), digest_size=16).digest()


def work(setup: Setup, excluded: Excluder, task: Task) -> Result:
    """List one directory and compare it with what the store knows of it."""
    if setup.plan and not setup.full and task.same:  # a directory replaced is listed whole
        if task.noticed is not None:
            return _noticed(setup, excluded, task)
        if codec.count(task.done) >= QUICK_FROM:
            return _by_name(setup, excluded, task)
    if setup.plan and setup.full and codec.count(task.done) >= QUICK_FROM:
        return _full_by_index(setup, excluded, task)
    try:
        listing = list_dir(task.path, task.rel, excluded, setup.follow)
    except OSError as err:
        return Result(str(err.strerror))
    listed_ns = time.time_ns()
    files, skipped = listing.files, listing.skipped
    subdirs = tuple(listing.subdirs)
    if not setup.plan:  # baseline: every file will be confirmed as it is listed now
        noted = None if skipped else DirPlan(digest=listing_digest(files))
        return Result(None, listed_ns, len(files), noted, skipped, subdirs, files)
    digest = None
    if not task.pending and not skipped:
        digest = listing_digest(files)
        if digest == task.digest:  # as when it last needed nothing: nothing to do
            return Result(None, listed_ns, len(files), None, skipped, subdirs)
    done = codec.decode(task.done)
    plan: DirPlan | None = None
    # the common case of a full walk, at C speed: nothing new, nothing pending
    if task.pending or skipped or files != done:
        plan = plan_dir(files, skipped, done, task.pending, setup.now, setup.settle, setup.full)
        if not (plan.upserts or plan.deletes or plan.changed or plan.newly_skipped):
            plan = None
    if plan is None and digest is not None:
        plan = DirPlan(digest=digest)  # it needs nothing: remember how it listed
    return Result(None, listed_ns, len(files), plan, skipped, subdirs)


def _by_name(setup: Setup, excluded: Excluder, task: Task) -> Result:
    """A large directory whose names changed: look only at new names and work in progress."""
    try:
        names, done = codec.known(task.done, _unrecorded(task, task.pending))
        listing, nfiles = list_changes(task.path, task.rel, excluded, setup.follow, names,
                                       task.pending)  # fmt: skip
    except OSError as err:
        return Result(str(err.strerror))
    listed_ns = time.time_ns()
    # a known name looked at all the same (a followed link, a file become a link): its record
    others = [n for n in _unrecorded(task, listing.files) if n not in done and n in names]
    if others:
        done.update(codec.lookup(task.done, others))
    return _planned(setup, task, listing.files, listing.skipped, done, listing.subdirs,
                    listed_ns, nfiles)  # fmt: skip


def _full_by_index(setup: Setup, excluded: Excluder, task: Task) -> Result:
    """A full walk of a large directory: every entry stat'ed and compared with its confirmed
    record, kept in arrays by position (no dict of every file, on either side)."""
    try:
        names, sizes, mtimes = codec.index(task.done)
        listing, nfiles = list_against(task.path, task.rel, excluded, setup.follow, names.find,
                                       sizes, mtimes, task.pending)  # fmt: skip
    except OSError as err:
        return Result(str(err.strerror))
    listed_ns = time.time_ns()
    done = {}
    for name in (*listing.files, *task.pending):
        i = names.find(name)
        if i >= 0:
            done[name] = (sizes[i], mtimes[i])
    return _planned(setup, task, listing.files, listing.skipped, done, listing.subdirs,
                    listed_ns, nfiles, full=True)  # fmt: skip


def _noticed(setup: Setup, excluded: Excluder, task: Task) -> Result:
    """A directory whose change notices are trusted: look only at what they name, and at work in
    progress."""
    assert task.noticed is not None
    wanted = sorted(task.noticed | task.pending.keys())
    try:
        listing = look_at(task.path, task.rel, excluded, setup.follow, wanted)
    except OSError as err:
        return Result(str(err.strerror))
    listed_ns = time.time_ns()
    done = codec.lookup(task.done, _unrecorded(task, listing.files))
    result = _planned(setup, task, listing.files, listing.skipped, done, listing.subdirs,
                      listed_ns, len(listing.files))  # fmt: skip
    return Result(result.error, result.listed_ns, result.nfiles, result.plan, result.skipped,
                  result.subdirs, partial=True)  # fmt: skip


def _unrecorded(task: Task, names: Iterable[str]) -> list[str]:
    """The names whose confirmed record a plan may need: those with no row of work in progress
    (new ones) or a skipped one (plan_dir compares only these with the confirmed listing)."""
    pending = task.pending
    return [n for n in names if n not in pending or pending[n].state == SKIPPED]


def _planned(
    setup: Setup,
    task: Task,
    files: dict[str, tuple[int, int]],
    skipped: dict[str, str],
    done: dict[str, tuple[int, int]],
    subdirs: list[Subdir],
    listed_ns: int,
    nfiles: int,
    full: bool = False,
) -> Result:
    plan: DirPlan | None = None
    if files or skipped or task.pending:
        plan = plan_dir(files, skipped, done, task.pending, setup.now, setup.settle, full)
        if not (plan.upserts or plan.deletes or plan.changed or plan.newly_skipped):
            plan = None
    return Result(None, listed_ns, nfiles, plan, skipped, tuple(subdirs))


class Inline:
    """Lists in this process, one directory at a time, in the order of the walk."""

    def __init__(self, setup: Setup) -> None:
        self.setup, self.excluded = setup, Excluder(setup.patterns)
        self.ready: list[tuple[Task, Result]] = []
        self.busy = 0

    def has_room(self) -> bool:
        return not self.ready

    def submit(self, task: Task) -> None:
        self.ready.append((task, work(self.setup, self.excluded, task)))
        self.busy += 1

    def collect(self) -> list[tuple[Task, Result]]:
        out, self.ready = self.ready, []
        self.busy -= len(out)
        return out

    def close(self, kill: bool = False) -> None:
        pass

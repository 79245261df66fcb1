"""One directory's share of a walk: list it, compare it with the store's confirmed listing, plan.

A ``DirTask`` carries what the store knows of one directory (its confirmed listing, still encoded,
the digest of its last listing that needed nothing, and its rows of work in progress); ``work``
lists the directory and answers with a ``DirResult``: the plan and the subdirectories, a few bytes
when nothing changed. No database here: ``work`` runs in the walk's own process (``Inline``) or
in a worker process (``parwalk``).

The digest spares a no-change full walk most of its Python work per file: a directory with no
work in progress whose listing hashes as it did when it last needed nothing needs nothing now,
without decoding and comparing its confirmed listing. A directory lists in the same order as
long as it does not change; a listing in another order merely misses the shortcut. The store
forgets a directory's digest whenever its confirmed listing changes.

An incremental walk does less for a directory whose mtime moved (names were added, removed or
renamed: a file's content never moves it; rewrites in place are the full walk's job). One of
``QUICK_FROM`` confirmed files or more is listed in chunks of names (``listing.list_chunks``,
``chunks``): only the names of chunks whose digest the store does not hold are looked up in the
confirmed listing (``codec.find``, or a table of the hashes of its names when they are many),
only new names and work in progress are looked at, and no dict of a million files is made. A
directory whose change notices are trusted (``DirTask.noticed``: ``watch`` on Linux) is not listed
at all: only the names noticed and work in progress are looked at (``listing.look_at``). Both
answer in this process only (the noticed one a ``partial`` ``DirResult``).
A full walk of such a directory stats every entry, but compares it with the confirmed listing
held as arrays by position (``codec.index``), keeping only what differs.
"""

from __future__ import annotations

import marshal
import time
from collections.abc import Iterable
from typing import NamedTuple

from globus_autosync.model.plan import SKIPPED, DirPlan, Pending, plan_dir
from globus_autosync.sources.base import Excluder, Listing, Subdir, join
from globus_autosync.sources.local.listing import list_against, list_chunks, list_dir, look_at
from globus_autosync.store import codec

QUICK_FROM = 10_000  # confirmed files from which a changed directory is listed in chunks
UNSURE_MAX = 250_000  # names of unsure chunks held before the confirmed names are read whole


class Setup(NamedTuple):
    """What every directory of one walk is listed and planned with."""

    patterns: tuple[str, ...]
    follow: bool
    plan: bool  # False: no plan, the files themselves are wanted (``baseline``)
    full: bool
    now: float
    settle: float
    check_names: bool = True  # names Globus cannot carry are passed over (Excluder)


class DirTask(NamedTuple):
    dir_id: int
    path: str
    rel: str
    done: bytes | None  # the confirmed listing, encoded (codec)
    pending: dict[str, Pending]
    digest: bytes | None = None  # of the last listing that needed nothing
    noticed: frozenset[str] | None = None  # names changed, by trusted notices: look at those only
    same: bool = True  # the directory has the inode it was last listed with (not replaced)
    chunks: bytes | None = None  # the digests of its chunks of confirmed names (chunks.pack)
    forgotten: bytes | None = None  # names cleanup took out since (NUL-joined): no chunk vouches


class DirResult(NamedTuple):
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
    import hashlib  # here: it costs a quiet run, which lists nothing, 2.5 ms

    return hashlib.blake2b(marshal.dumps(files, 2), digest_size=16).digest()


def work(setup: Setup, excluded: Excluder, task: DirTask) -> DirResult:
    """List one directory and compare it with what the store knows of it."""
    if setup.plan and not setup.full and task.same:  # a directory replaced is listed whole
        if task.noticed is not None:
            return _noticed(setup, excluded, task)
        if codec.count(task.done) >= QUICK_FROM:
            return _by_chunks(setup, excluded, task)
    if setup.plan and setup.full and codec.count(task.done) >= QUICK_FROM:
        return _full_by_index(setup, excluded, task)
    try:
        listing = list_dir(task.path, task.rel, excluded, setup.follow)
    except OSError as err:
        return DirResult(str(err.strerror))
    listed_ns = time.time_ns()
    files, skipped = listing.files, listing.skipped
    subdirs = tuple(listing.subdirs)
    if not setup.plan:  # baseline: every file will be confirmed as it is listed now
        noted = None if skipped else DirPlan(digest=listing_digest(files))
        return DirResult(None, listed_ns, len(files), noted, skipped, subdirs, files)
    digest = None
    if not task.pending and not skipped:
        digest = listing_digest(files)
        if digest == task.digest:  # as when it last needed nothing: nothing to do
            return DirResult(None, listed_ns, len(files), None, skipped, subdirs)
    done = codec.decode(task.done)
    plan: DirPlan | None = None
    # the common case of a full walk, at C speed: nothing new, nothing pending
    if task.pending or skipped or files != done:
        plan = plan_dir(files, skipped, done, task.pending, setup.now, setup.settle, setup.full)
        if not (plan.upserts or plan.deletes or plan.changed or plan.newly_skipped):
            plan = None
    if plan is None and digest is not None:
        plan = DirPlan(digest=digest)  # it needs nothing: remember how it listed
    return DirResult(None, listed_ns, len(files), plan, skipped, subdirs)


def _by_chunks(setup: Setup, excluded: Excluder, task: DirTask) -> DirResult:
    """A large directory whose names changed: its regular files are cut into chunks; only the
    names of chunks the store holds no digest of are looked up, only new names and work in
    progress are looked at."""
    from globus_autosync.sources.local import chunks  # here: its hashlib costs a quiet run 2.5 ms

    stored = chunks.unpack(task.chunks, setup.patterns)
    unsure = _Unsure(task.done, table=not stored)  # none stored: the names are all unsure
    # names cleanup took out of the confirmed listing since the digests were made: a chunk that
    # holds one (a new file under a deleted name) is unsure whatever its digest
    forgotten: frozenset[str] = frozenset()
    if task.forgotten:
        forgotten = frozenset(task.forgotten.decode("utf-8", "surrogateescape").split("\0"))
    try:
        listing, nfiles, found = list_chunks(
            task.path, task.rel, excluded, setup.follow, task.pending, stored, unsure, forgotten
        )
        listed_ns = time.time_ns()
        # the confirmed records a plan compares with: of work in progress, and of the known
        # names looked at all the same (a followed link, a file become a link); new ones have none
        done, new, vouched = unsure.resolve(
            excluded, task.rel, _unrecorded(task, [*listing.files, *task.pending])
        )
        if new:
            more = look_at(task.path, task.rel, excluded, setup.follow, new)
            listing.files.update(more.files)
            listing.subdirs.extend(more.subdirs)
            listing.skipped.update(more.skipped)
    except OSError as err:
        return DirResult(str(err.strerror))
    result = _planned(setup, task, listing, done, listed_ns, nfiles)
    digests = found | vouched
    if digests == stored and not forgotten:
        return result  # (new digests also clear the forgotten names: apply_dir)
    plan = result.plan or DirPlan()
    plan.chunks = chunks.pack(setup.patterns, digests)
    return result._replace(plan=plan)


class _Unsure:
    """The chunks of a relisted directory that no stored digest vouches for, and which of their
    names are new. Their names are held until ``UNSURE_MAX``, then (or from the start, with
    ``table``) checked as they come against a table of the hashes of every confirmed name
    (``codec.name_set``, about 0.6 s a million names), keeping only the new ones."""

    def __init__(self, done: bytes | None, table: bool) -> None:
        self.done = done
        self.chunks: list[tuple[bytes, list[str]]] = []
        self.held = 0
        self.table = codec.name_set(done) if table else None

    def __call__(self, digest: bytes, names: list[str]) -> None:
        if self.table is not None:
            table = self.table
            names = [n for n in names if n not in table]
        self.chunks.append((digest, names))
        self.held += len(names)
        if self.table is None and self.held > UNSURE_MAX:
            self.table = table = codec.name_set(self.done)
            self.chunks = [(d, [n for n in c if n not in table]) for d, c in self.chunks]
            self.held = sum(len(c) for _, c in self.chunks)

    def resolve(
        self, excluded: Excluder, rel: str, values_of: list[str]
    ) -> tuple[dict[str, tuple[int, int]], list[str], set[bytes]]:
        """(the confirmed records of ``values_of``; the new names, not excluded; the digests of
        the chunks whose names are all confirmed or excluded), the listing read once."""
        names_of = [n for _, chunk in self.chunks for n in chunk] if self.table is None else []
        done, known = codec.find(self.done, values_of, names_of)
        new: list[str] = []
        vouched: set[bytes] = set()
        for digest, chunk in self.chunks:
            left = [n for n in chunk if n not in known]
            if left and excluded.patterns:
                left = [n for n in left if not excluded(n, join(rel, n))]
            if left:
                new.extend(left)
            else:
                vouched.add(digest)
        return done, new, vouched


def _full_by_index(setup: Setup, excluded: Excluder, task: DirTask) -> DirResult:
    """A full walk of a large directory: every entry stat'ed and compared with its confirmed
    record, kept in arrays by position (no dict of every file, on either side)."""
    try:
        names, sizes, mtimes = codec.index(task.done)
        listing, nfiles = list_against(
            task.path, task.rel, excluded, setup.follow, names.find, sizes, mtimes, task.pending
        )
    except OSError as err:
        return DirResult(str(err.strerror))
    listed_ns = time.time_ns()
    done = {}
    for name in (*listing.files, *task.pending):
        i = names.find(name)
        if i >= 0:
            done[name] = (sizes[i], mtimes[i])
    return _planned(setup, task, listing, done, listed_ns, nfiles, full=True)


def _noticed(setup: Setup, excluded: Excluder, task: DirTask) -> DirResult:
    """A directory whose change notices are trusted: look only at what they name, and at work in
    progress."""
    assert task.noticed is not None
    wanted = sorted(task.noticed | task.pending.keys())
    try:
        listing = look_at(task.path, task.rel, excluded, setup.follow, wanted)
    except OSError as err:
        return DirResult(str(err.strerror))
    listed_ns = time.time_ns()
    done = codec.lookup(task.done, _unrecorded(task, listing.files))
    result = _planned(setup, task, listing, done, listed_ns, len(listing.files))
    return result._replace(partial=True)


def _unrecorded(task: DirTask, names: Iterable[str]) -> list[str]:
    """The names whose confirmed record a plan may need: those with no row of work in progress
    (new ones) or a skipped one (plan_dir compares only these with the confirmed listing)."""
    pending = task.pending
    return [n for n in names if n not in pending or pending[n].state == SKIPPED]


def _planned(
    setup: Setup,
    task: DirTask,
    listing: Listing,
    done: dict[str, tuple[int, int]],
    listed_ns: int,
    nfiles: int,
    full: bool = False,
) -> DirResult:
    files, skipped = listing.files, listing.skipped
    plan: DirPlan | None = None
    if files or skipped or task.pending:
        plan = plan_dir(files, skipped, done, task.pending, setup.now, setup.settle, full)
        if not (plan.upserts or plan.deletes or plan.changed or plan.newly_skipped):
            plan = None
    return DirResult(None, listed_ns, nfiles, plan, skipped, tuple(listing.subdirs))


class Inline:
    """Lists in this process, one directory at a time, in the order of the walk."""

    def __init__(self, setup: Setup) -> None:
        self.setup, self.excluded = setup, Excluder(setup.patterns, setup.check_names)
        self.ready: list[tuple[DirTask, DirResult]] = []
        self.busy = 0

    def has_room(self) -> bool:
        return not self.ready

    def submit(self, task: DirTask) -> None:
        self.ready.append((task, work(self.setup, self.excluded, task)))
        self.busy += 1

    def collect(self) -> list[tuple[DirTask, DirResult]]:
        out, self.ready = self.ready, []
        self.busy -= len(out)
        return out

    def close(self, kill: bool = False) -> None:
        pass

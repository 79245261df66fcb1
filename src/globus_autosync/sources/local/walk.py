"""Walking a job's source against the store: full, or incremental in O(directories).

A directory's mtime changes when an entry is created, removed or renamed in it. So an incremental
walk stats every known directory and lists only those whose (mtime, inode) changed, that are new,
or that still hold work in progress. A directory whose mtime is too close to the moment it was
listed is "racy" (a file created in the same clock tick would not change it) and is listed again
next time.

A full walk of a large tree (``PARALLEL_FROM`` confirmed files) lists and plans its directories
in worker processes and in this one (listwork, parwalk); the traversal, the racy rule, loop
detection, exclusion and every SQL statement stay here.

A walk may be given ``Notices`` (``watch`` on Linux: ``inotify``): what changed in each directory
since the last cycle, by name. They only accelerate: every known directory is still stat'ed, and
a directory they do not vouch for (no watch yet, one lost or replaced, an overflow) is listed as
without them.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from typing import NamedTuple, Protocol

from globus_autosync.config import Job
from globus_autosync.errors import WorkerError
from globus_autosync.model.plan import DirPlan
from globus_autosync.sources.base import (
    Apply,
    DirTree,
    Excluder,
    Listing,
    Notices,
    WalkStats,
    join,
    names_checked,
    printable,
)
from globus_autosync.sources.local.listwork import DirResult, DirTask, Inline, Setup
from globus_autosync.store import Store
from globus_autosync.store.heartbeats import SOURCE, beat

log = logging.getLogger(__name__)

RACY_NS = 2_000_000_000


PARALLEL_FROM = 50_000  # confirmed files from which a full walk lists in worker processes
MAX_WORKERS = 3  # worker processes at most; the walk's own process lists too


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Lister(Protocol):
    """Where a walk's directories are listed and planned: ``Inline`` or ``Workers``."""

    @property
    def busy(self) -> int:
        """Tasks given and not yet collected."""

    def has_room(self) -> bool: ...
    def submit(self, task: DirTask) -> None: ...
    def collect(self) -> list[tuple[DirTask, DirResult]]: ...
    def close(self, kill: bool = False) -> None: ...


class StackEntry(NamedTuple):
    """A directory waiting to be visited."""

    dir_id: int
    path: str
    ancestors: frozenset[tuple[int, int]]  # their (dev, inode), for loop detection


class Walker:
    def __init__(
        self,
        job: Job,
        store: Store,
        tree: DirTree,
        apply: Apply,
        now: float,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[WalkStats], None] | None = None,
        *,
        plan: bool = True,
        workers: int | None = None,
        parallel_from: int | None = None,
        notices: Notices | None = None,
    ) -> None:
        self.job, self.store, self.tree, self.apply = job, store, tree, apply
        self.progress = progress
        self.now = now
        self.should_stop = should_stop
        self.stopped = False  # asked to stop before the walk was complete
        self.excluded = Excluder(job.exclude, names_checked(job.transport))
        self.follow = job.symlinks == "follow"
        self.stats = WalkStats()
        self.full = False
        self.plan = plan  # False: no plan, apply gets the files (``baseline``)
        if workers is None:
            workers = min(MAX_WORKERS, _cpus() - 1)
        self.workers = workers  # processes for a full walk of a large tree; 0: none
        self.parallel_from = PARALLEL_FROM if parallel_from is None else parallel_from
        self.busy: set[int] = set()
        self.with_rows: set[int] = set()
        self.notices = notices

    def run(self, full: bool) -> WalkStats:
        self.full = full
        if self.notices is not None:
            self.notices.begin()
        self.busy = self.store.files.busy_dirs(self.tree.job_id)
        self.with_rows = self.store.files.dirs_with_rows(self.tree.job_id) if self.plan else set()
        lister = self._lister()
        try:
            self._walk(lister)
        except WorkerError:
            lister.close(kill=True)
            if not self.should_stop():
                raise
            self.stopped = True  # the signal that stops us ended the workers first
        except BaseException:
            lister.close(kill=True)
            raise
        else:
            lister.close()
        return self.stats

    def _lister(self) -> Lister:
        setup = Setup(
            self.job.exclude,
            self.follow,
            self.plan,
            self.full,
            self.now,
            self.job.settle,
            self.excluded.check_names,
        )
        if (
            self.full
            and self.workers > 0
            and self.store.dirs.confirmed_count(self.tree.job_id) >= self.parallel_from
        ):
            from globus_autosync.sources.local.parwalk import Workers  # here: 4 ms, full walks only

            try:
                return Workers(self.workers, setup)
            except OSError as err:
                log.warning(
                    "%s: cannot start worker processes (%s); listing in this process",
                    self.job.name,
                    err,
                )
        return Inline(setup)

    def _walk(self, lister: Lister) -> None:
        stack = [StackEntry(self.tree.root, str(self.job.source), frozenset())]
        given: dict[int, tuple[os.stat_result, frozenset[tuple[int, int]]]] = {}  # to the lister
        while stack or lister.busy:
            while stack and lister.has_room():
                if self.should_stop():
                    self.stopped = True  # what is in flight is dropped, as if not yet seen
                    return
                self._visit(stack.pop(), stack, lister, given)
            if lister.busy:
                for task, result in lister.collect():
                    st, below = given.pop(task.dir_id)
                    subdirs = self._listed(task, result, st)
                    stack.extend(StackEntry(child, sub, below) for child, sub in reversed(subdirs))

    def _visit(
        self,
        here: StackEntry,
        stack: list[StackEntry],
        lister: Lister,
        given: dict[int, tuple[os.stat_result, frozenset[tuple[int, int]]]],
    ) -> None:
        dir_id, path, ancestors = here
        beat(SOURCE)  # a walk that moves is never a hang
        if self.notices is not None:
            self.notices.watch(dir_id, path)
        try:
            st = os.stat(path) if self.follow else os.lstat(path)
        except FileNotFoundError:
            return  # gone since its parent was listed
        except OSError as err:
            self._problem(dir_id, f"cannot stat directory: {err.strerror}")
            return
        if not stat.S_ISDIR(st.st_mode):
            return  # replaced by something else; its parent's listing says what
        inode = (st.st_dev, st.st_ino)
        if inode in ancestors:
            self._problem(dir_id, "symbolic link loop, not followed")
            return
        below = ancestors | {inode}
        self.stats.dirs += 1
        if self.progress is not None:
            self.progress(self.stats)
        row = self.tree.rows[dir_id]
        rel = self.tree.rel[dir_id]
        changed = (row.mtime_ns, row.ino) != (st.st_mtime_ns, st.st_ino)
        noticed = None
        if self.notices is not None and self.plan and not self.full:
            noticed = self.notices.names(dir_id, st)
            # a change no notice explains (another machine's, on a share): list it whole
            changed = changed or (noticed is None and self.notices.moved(st))
        if self.full or dir_id in self.busy or changed or noticed:
            given[dir_id] = (st, below)
            same = row.ino == st.st_ino
            if self.plan:
                raw = self.store.dirs.raw_state(dir_id, rows=dir_id in self.with_rows)
                lister.submit(
                    DirTask(
                        dir_id,
                        path,
                        rel,
                        raw.confirmed,
                        raw.pending,
                        raw.digest,
                        noticed,
                        same,
                        raw.chunks,
                        raw.forgotten,
                    )
                )
            else:
                lister.submit(DirTask(dir_id, path, rel, None, {}, None, noticed, same))
            return
        stack.extend(
            StackEntry(child, os.path.join(path, name), below)
            for name, child in reversed(self._known_children(dir_id, rel))
        )

    def _known_children(self, dir_id: int, rel: str) -> list[tuple[str, int]]:
        known = self.tree.children.get(dir_id)
        if not known:
            return []
        if self.excluded.patterns:
            return [(n, c) for n, c in known.items() if not self.excluded(n, join(rel, n))]
        return list(known.items())

    def _listed(
        self, task: DirTask, result: DirResult, st: os.stat_result
    ) -> list[tuple[int, str]]:
        dir_id, rel = task.dir_id, task.rel
        beat(SOURCE)
        if result.error is not None:
            self._problem(dir_id, f"cannot list directory: {result.error}")
            return []
        self.stats.listed += 1
        self.stats.files += result.nfiles
        plan = result.plan or DirPlan()
        for row in plan.newly_skipped:
            log.warning(
                "%s: skipped %s: %s", self.job.name, printable(join(rel, row.name)), row.reason
            )
        self.stats.changed += plan.changed
        self.stats.skipped += len(plan.newly_skipped)
        mtime = st.st_mtime_ns
        if result.listed_ns - mtime < RACY_NS:
            mtime = -1  # racy: a change in the same clock tick would go unseen; list it again
        made = self.tree.rows[dir_id].made
        if not result.partial and not result.nfiles and not result.subdirs and not made:
            self.stats.empty_dirs.append(dir_id)
        listing = Listing(result.files or {}, list(result.subdirs), result.skipped or {})
        self.apply(dir_id, plan, listing, mtime, st.st_ino)
        children = self.tree.children.get(dir_id, {})
        out = []
        if result.partial:  # the known subdirectories, then those noticed
            new = {sub.name for sub in result.subdirs}
            for name, child in self._known_children(dir_id, rel):
                if name not in new:
                    out.append((child, os.path.join(task.path, name)))
        for sub in result.subdirs:
            known = children.get(sub.name)
            out.append((self.tree.add(dir_id, sub.name) if known is None else known, sub.path))
        return out

    def _problem(self, dir_id: int, message: str) -> None:
        rel = self.tree.rel.get(dir_id, "?") or "."
        log.warning("%s: %s: %s", self.job.name, printable(rel), message)
        self.stats.skipped += 1
        self.stats.unreadable.add(dir_id)
        self.stats.problems[printable(rel) + "/"] = message

"""Walking a job's source against the store: full, or incremental in O(directories).

A directory's mtime changes when an entry is created, removed or renamed in it. So an incremental
walk stats every known directory and lists only those whose (mtime, inode) changed, that are new,
or that still hold work in progress. A directory whose mtime is too close to the moment it was
listed is "racy" (a file created in the same clock tick would not change it) and is listed again
next time.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from globus_autosync.config import Job
from globus_autosync.plan import DirPlan, plan_dir
from globus_autosync.scan import Excluder, Listing, join, list_dir, printable
from globus_autosync.store import DirRow, Store

log = logging.getLogger(__name__)

RACY_NS = 2_000_000_000


@dataclass
class WalkStats:
    files: int = 0  # files listed
    dirs: int = 0  # directories visited
    listed: int = 0  # directories listed
    changed: int = 0
    skipped: int = 0
    empty_dirs: list[int] = field(default_factory=list)  # listed empty, not yet made


class DirTree:
    """The job's known directories: ids, relative paths, children. O(directories) memory."""

    def __init__(self, store: Store, job_id: int) -> None:
        self.store, self.job_id = store, job_id
        self.rows: dict[int, DirRow] = {}
        self.rel: dict[int, str] = {}
        self.children: dict[int, dict[str, int]] = {}
        for row in store.dirs(job_id):
            self._add(row)
        roots = self.children.get(0, {})
        self.root = roots[""] if "" in roots else self.add(0, "")

    def _add(self, row: DirRow) -> None:
        self.rows[row.id] = row
        self.rel[row.id] = join(self.rel[row.parent], row.name) if row.parent else ""
        self.children.setdefault(row.parent, {})[row.name] = row.id

    def add(self, parent: int, name: str) -> int:
        dir_id = self.store.add_dir(self.job_id, parent, name)
        self._add(DirRow(dir_id, parent, name, -1, 0, False))
        return dir_id


Apply = Callable[[int, DirPlan, Listing, int, int], None]


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
    ) -> None:
        self.job, self.store, self.tree, self.apply = job, store, tree, apply
        self.progress = progress
        self.now = now
        self.should_stop = should_stop
        self.stopped = False  # asked to stop before the walk was complete
        self.excluded = Excluder(job.exclude)
        self.follow = job.symlinks == "follow"
        self.stats = WalkStats()
        self.full = False

    def run(self, full: bool) -> WalkStats:
        self.full = full
        busy = self.store.busy_dirs(self.tree.job_id)
        # (dir id, path, ancestors' (dev, inode) for loop detection)
        stack: list[tuple[int, str, frozenset[tuple[int, int]]]] = [
            (self.tree.root, str(self.job.source), frozenset())
        ]
        while stack:
            if self.should_stop():
                self.stopped = True
                break
            dir_id, path, ancestors = stack.pop()
            try:
                st = os.stat(path) if self.follow else os.lstat(path)
            except FileNotFoundError:
                continue  # gone since its parent was listed
            except OSError as err:
                self._problem(dir_id, f"cannot stat directory: {err.strerror}")
                continue
            if not stat.S_ISDIR(st.st_mode):
                continue  # replaced by something else; its parent's listing says what
            here = (st.st_dev, st.st_ino)
            if here in ancestors:
                self._problem(dir_id, "symbolic link loop, not followed")
                continue
            below = ancestors | {here}
            self.stats.dirs += 1
            if self.progress is not None:
                self.progress(self.stats)
            row = self.tree.rows[dir_id]
            if full or dir_id in busy or (row.mtime_ns, row.ino) != (st.st_mtime_ns, st.st_ino):
                subdirs = self._list(dir_id, path, st)
                if subdirs is None:
                    continue
            else:
                known = self.tree.children.get(dir_id, {})
                rel = self.tree.rel[dir_id]
                subdirs = [
                    (child, os.path.join(path, name))
                    for name, child in known.items()
                    if not self.excluded(name, join(rel, name))
                ]
            stack.extend((child, sub, below) for child, sub in reversed(subdirs))
        return self.stats

    def _list(self, dir_id: int, path: str, st: os.stat_result) -> list[tuple[int, str]] | None:
        rel = self.tree.rel[dir_id]
        try:
            listing = list_dir(path, rel, self.excluded, self.follow)
        except OSError as err:
            self._problem(dir_id, f"cannot list directory: {err.strerror}")
            return None
        self.stats.listed += 1
        self.stats.files += len(listing.files)
        done, pending = self.store.dir_state(dir_id)
        plan = plan_dir(
            listing.files, listing.skipped, done, pending, self.now, self.job.settle, self.full
        )
        for row in plan.newly_skipped:
            log.warning("%s: skipped %s: %s", self.job.name, join(rel, row.name), row.reason)
        self.stats.changed += plan.changed
        self.stats.skipped += len(plan.newly_skipped)
        mtime = st.st_mtime_ns
        if time.time_ns() - mtime < RACY_NS:
            mtime = -1  # racy: a change in the same clock tick would go unseen; list it again
        if not listing.files and not listing.subdirs and not self.tree.rows[dir_id].made:
            self.stats.empty_dirs.append(dir_id)
        self.apply(dir_id, plan, listing, mtime, st.st_ino)
        children = self.tree.children.get(dir_id, {})
        out = []
        for sub in listing.subdirs:
            child = children.get(sub.name)
            if child is None:
                child = self.tree.add(dir_id, sub.name)
            out.append((child, sub.path))
        return out

    def _problem(self, dir_id: int, message: str) -> None:
        rel = self.tree.rel.get(dir_id, "?") or "."
        log.warning("%s: %s: %s", self.job.name, printable(rel), message)
        self.stats.skipped += 1

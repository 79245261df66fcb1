"""A Globus collection as a source: the job's tree listed through the Transfer API.

There is no recursive listing and no change feed, and a folder's ``last_modified`` is no change
signal on every connector (Google Drive does not bump it when a file is added). So every known
directory is listed each cycle, one ``operation_ls`` per directory (paged: ``limit``/``offset``),
at most ``requests_per_second`` requests a second: a quiet cycle costs one request per directory
(plus one per further page of 100,000 entries). A file is new or changed when its (size,
last_modified) differ from its confirmed copy, and settles by observation time only: unchanged
across listings at least ``settle`` apart (the remote clock is not trusted). One directory is
held in memory at a time, as for a local source.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable
from datetime import datetime
from typing import Any

from globus_autosync.config import Job
from globus_autosync.errors import JobError, TransportError
from globus_autosync.globus.client import Pace, TransferSession
from globus_autosync.globus.listing import Unlistable, Vanished, list_entries, unlistable
from globus_autosync.model.crashpoint import crashpoint
from globus_autosync.model.plan import DirPlan, plan_dir
from globus_autosync.sources.base import (
    SKIPPED_SPECIAL,
    SKIPPED_SYMLINK,
    Apply,
    DirTree,
    Excluder,
    Listing,
    Subdir,
    Walked,
    WalkStats,
    join,
    printable,
    unsendable,
)

log = logging.getLogger(__name__)

AMBIGUOUS = (
    "AMBIGUOUS_PATH: {n} entries of this name in one folder, which Globus cannot tell apart; "
    "rename all but one on the source"
)
INVALID_LINK = "symbolic link to nothing (the listing marks it invalid_symlink)"
LINK_LOOP = "symbolic link loop, not followed"


def mtime_ns(entry: dict[str, Any]) -> int:
    """``last_modified`` ("2023-12-18 16:52:50+00:00": UTC, whole seconds) in nanoseconds."""
    text = entry.get("last_modified")
    if not text:
        return 0
    return int(datetime.fromisoformat(str(text)).timestamp()) * 1_000_000_000


def classify(
    entries: list[dict[str, Any]], path: str, rel: str, excluded: Excluder, follow: bool
) -> tuple[Listing, dict[str, str]]:
    """One directory's entries -> a Listing, and the path each followed link leads to."""
    out = Listing()
    targets: dict[str, str] = {}
    counts: dict[str, int] = {}
    for entry in entries:
        name = str(entry.get("name", ""))
        counts[name] = counts.get(name, 0) + 1
    for entry in entries:
        name = str(entry.get("name", ""))
        if not name or name in (".", ".."):
            continue
        if excluded.patterns and excluded(name, join(rel, name)):
            continue
        if counts[name] > 1:
            out.skipped[name] = AMBIGUOUS.format(n=counts[name])
            continue
        why = unsendable(name)
        if why is not None:
            out.skipped[name] = why  # as the store keeps it, and a local listing
            continue
        kind, link = entry.get("type"), entry.get("link_target")
        if kind == "invalid_symlink":
            out.skipped[name] = INVALID_LINK
            continue
        if link and not follow:
            out.skipped[name] = SKIPPED_SYMLINK
            continue
        own = posixpath.join(path, name)
        if kind == "file":
            out.files[name] = (int(entry.get("size") or 0), mtime_ns(entry))
        elif kind == "dir":
            out.subdirs.append(Subdir(name, own, 0, 0))
            if link:
                targets[name] = posixpath.normpath(posixpath.join(path, str(link)))
        else:
            out.skipped[name] = SKIPPED_SPECIAL
    return out, targets


class GlobusSource:
    kind = "globus"
    trust_mtime = False

    def __init__(self, job: Job, session: TransferSession) -> None:
        assert job.globus.source_collection
        self.job, self.session = job, session
        self.collection = job.globus.source_collection
        self.root = str(job.source).rstrip("/") or "/"
        self.excluded = Excluder(job.exclude)
        self.follow = job.symlinks == "follow"
        self.pace = Pace(job.requests_per_second)
        self.requests = 0  # operation_ls requests made

    def ready(self) -> None:
        pass  # the first listing says what is wrong, in the words of Globus

    def _path(self, rel: str) -> str:
        return posixpath.join(self.root, rel) if rel else self.root

    # -- one directory ----------------------------------------------------------------------
    def entries(self, path: str) -> list[dict[str, Any]]:
        """Every entry of one directory, page by page; raises Vanished (404), Unlistable
        (refused: permission denied, the storage's error), TransportError
        (429, 5xx, the network, once the SDK's own retries are spent) or AuthError."""
        what = f"list {path} on the source"
        return list_entries(
            self.session, self.collection, path, what, unlistable(path), self._paced
        )

    def _paced(self) -> None:
        self.pace.wait()
        self.requests += 1

    def list_dir(self, rel: str) -> Listing:
        path = self._path(rel)
        return classify(self.entries(path), path, rel, self.excluded, self.follow)[0]

    # -- the tree -----------------------------------------------------------------------------
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
        stats = WalkStats()
        walked = Walked(stats)
        store = tree.store
        with_rows = store.files.dirs_with_rows(tree.job_id)
        # (dir id, path to list it by, the real paths of it and its ancestors: loop detection)
        stack: list[tuple[int, str, frozenset[str]]] = [
            (tree.root, self.root, frozenset({self.root}))
        ]
        while stack:
            if should_stop():
                walked.stopped = True
                break
            dir_id, path, ancestors = stack.pop()
            rel = tree.rel[dir_id]
            try:
                entries = self.entries(path)
            except Vanished:
                if dir_id == tree.root:
                    raise JobError(
                        f"job {self.job.name!r}: source {self.root} is not a directory on the "
                        f"source collection {self.collection}; check the 'source' key"
                    ) from None
                self._vanished(tree, dir_id, with_rows)
                continue
            except Unlistable as err:
                if dir_id == tree.root and err.denied:
                    raise JobError(
                        f"job {self.job.name!r}: cannot list the source {self.root}: "
                        f"{err}; check the 'source' key and its permissions"
                    ) from None
                if dir_id == tree.root:  # the collection's side (Globus Connect Personal off?)
                    walked.stopped = True
                    walked.problem = f"cannot list the source {self.root}: {err}"
                    break
                log.warning("%s: %s: cannot list directory: %s", self.job.name, rel, err)
                stats.skipped += 1
                stats.unreadable.add(dir_id)
                stats.problems[f"{printable(rel)}/"] = f"cannot list directory: {err}"
                continue
            except TransportError as err:
                walked.stopped = True
                why = str(err).removeprefix(f"{self.job.name}: ")  # the cycle's line names it
                walked.problem = f"listing the source stopped at {rel or '.'}: {why}"
                break
            listing, targets = classify(entries, path, rel, self.excluded, self.follow)
            del entries
            stats.dirs += 1
            stats.listed += 1
            stats.files += len(listing.files)
            if progress is not None:
                progress(stats)
            dplan = DirPlan()
            if plan:
                done, pending = store.dirs.state(dir_id)
                dplan = plan_dir(
                    listing.files,
                    listing.skipped,
                    done,
                    pending,
                    now,
                    self.job.settle,
                    full,
                    trust_mtime=False,
                )
                for row in dplan.newly_skipped:
                    log.warning(
                        "%s: skipped %s: %s",
                        self.job.name,
                        printable(join(rel, row.name)),
                        row.reason,
                    )
                stats.changed += dplan.changed
                stats.skipped += len(dplan.newly_skipped)
            if not listing.files and not listing.subdirs and not tree.rows[dir_id].made:
                stats.empty_dirs.append(dir_id)
            apply(dir_id, dplan, listing, -1, 0)  # no folder time: each cycle lists it again
            crashpoint("remote-listed")
            known = tree.children.get(dir_id, {})
            listed = {sub.name for sub in listing.subdirs}
            for name, gone in list(known.items()):
                if name not in listed:
                    self._vanished(tree, gone, with_rows)
            for sub in reversed(listing.subdirs):
                real = targets.get(sub.name, sub.path)
                if sub.name in targets and real in ancestors:  # a link back up the tree
                    log.warning("%s: %s: %s", self.job.name, join(rel, sub.name), LINK_LOOP)
                    stats.skipped += 1
                    continue
                found = known.get(sub.name)
                child = tree.add(dir_id, sub.name) if found is None else found
                stack.append((child, sub.path, ancestors | {real}))
        log.debug(
            "%s: %d directories listed in %d requests", self.job.name, stats.listed, self.requests
        )
        return walked

    def _vanished(self, tree: DirTree, dir_id: int, with_rows: set[int]) -> None:
        """A directory no longer on the source: its pending work is dropped (not its confirmed
        state: if it comes back as it was, nothing in it is sent again)."""
        subtree, todo = [], [dir_id]
        while todo:
            d = todo.pop()
            subtree.append(d)
            todo.extend(tree.children.get(d, {}).values())
        busy = [d for d in subtree if d in with_rows]
        if not busy:
            return
        dropped = tree.store.files.drop_pending(busy)
        with_rows.difference_update(busy)
        if dropped:
            what = (
                "1 file not yet sent there is"
                if dropped == 1
                else f"{dropped} files not yet sent there are"
            )
            log.warning(
                "%s: %s is gone from the source; %s forgotten",
                self.job.name,
                tree.rel[dir_id],
                what,
            )

"""Source cleanup's I/O: delete a source file once its copy is confirmed and verified (opt-in).

A file is deleted only when, at that moment, all of these hold:

1. it is confirmed: the directory's confirmed listing holds exactly the (size, mtime_ns) it was
   confirmed with, and it has no row of work in progress (waiting, queued, in flight, failed,
   skipped);
2. an ``lstat`` right before the unlink shows the size, mtime_ns and inode it had when it was
   confirmed, and it is a regular file, not reached through a followed symlink, not excluded;
3. the destination, looked at now, holds it (local: same size and mtime; Globus: listed with the
   same size); a missing or different copy is queued to be sent again instead;
4. the cycle reconciled and scanned without a transport, configuration or state error (the
   caller runs cleanup only then), and the file's directory could be read;
5. the deletion is journaled (``cleanup.deleting``) before the unlink, and resolved after it,
   with a line in the append-only audit log ``<state dir>/log/deletions.jsonl``. A run killed
   in between leaves the mark, and the next run resolves it from what the source shows.

The decisions are in ``rules``; this module looks, journals, unlinks, resolves and recovers.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import Set
from dataclasses import dataclass, field
from pathlib import Path

from globus_autosync.cleanup import rules
from globus_autosync.cleanup.audit import AuditLog, audit_key
from globus_autosync.cleanup.enrolment import enroll_all
from globus_autosync.errors import TransportError
from globus_autosync.model.crashpoint import crashpoint
from globus_autosync.model.plan import QUEUED, SEEN, Pending
from globus_autosync.sources.base import Excluder, join, printable
from globus_autosync.sources.context import CycleContext
from globus_autosync.store import Candidate
from globus_autosync.store.heartbeats import DESTINATION, SOURCE, beat

log = logging.getLogger(__name__)

_LOG_EACH = 20  # per-file warnings per cycle before they are summed up


@dataclass(slots=True)
class CleanupResult:
    deleted: int = 0
    bytes: int = 0
    failed: int = 0
    would_delete: list[str] = field(default_factory=list)
    problem: str | None = None  # the destination could not be looked at: stopped early


def free_space(path: Path) -> tuple[int, int]:
    """(free bytes for an unprivileged user, total bytes) of the file system holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize


@dataclass(slots=True)
class _Group:
    """One directory's work: what is deleted, kept, dropped, failed or sent again."""

    dir_id: int
    rel: str
    deleted: list[Candidate] = field(default_factory=list)
    kept: list[Candidate] = field(default_factory=list)
    dropped: list[Candidate] = field(default_factory=list)
    failed: list[tuple[Candidate, str | None, float]] = field(default_factory=list)
    deferred: list[tuple[Candidate, float]] = field(default_factory=list)  # until then
    requeue: list[Pending] = field(default_factory=list)


class Cleaner:
    """Runs the cleanup step of one cycle of one job."""

    def __init__(self, ctx: CycleContext) -> None:
        job = ctx.job
        self.job, self.store, self.tree, self.transport = job, ctx.store, ctx.tree, ctx.transport
        self.state_dir, self.now, self.dry_run = ctx.state_dir, ctx.now, ctx.dry_run
        self.job_id = ctx.job_id
        self.unreadable: Set[int] = frozenset()  # directories this cycle could not list
        self.excluded = Excluder(job.exclude)
        self.root = Path(job.source)
        self.root_str = str(self.root).rstrip("/") or "/"
        self.real_root = os.path.realpath(self.root)
        self.audit = AuditLog(
            ctx.state_dir,
            job.name,
            self.root_str,
            job.destination.rstrip("/"),
            job.globus.destination_collection,
        )
        self.result = CleanupResult()
        self._warned = 0

    # -- the step ---------------------------------------------------------------------------
    def run(self, unreadable: Set[int] = frozenset()) -> CleanupResult:
        """Delete what is due (the cycle calls ``recover`` first, before its walk); nothing under
        a directory the cycle could not list (``unreadable``)."""
        self.unreadable = unreadable
        if not self.job.cleanup.enabled:
            if self.store.cleanup.enrolled(self.job_id) is not None:
                self.store.cleanup.off(self.job_id)
            return self.result
        if self.store.cleanup.enrolled(self.job_id) is None:
            enroll_all(self.store, self.tree, self.root_str, self.now, self.job.name)
        try:
            self._delete_due()
        except TransportError as err:
            message = f"cleanup stopped, the destination cannot be looked at: {err}"
            log.warning("%s: %s", self.job.name, message)
            self.result.problem = message
        if self._warned > _LOG_EACH:
            more = self._warned - _LOG_EACH
            log.warning("%s: ... and %d more files kept or not deleted", self.job.name, more)
        return self.result

    def _pressure(self) -> int:
        """Bytes short of ``keep_free`` on the source's file system (0: none)."""
        if self.job.cleanup.keep_free is None:
            return 0
        try:
            free, total = free_space(self.root)
        except OSError as err:
            log.warning(
                "%s: cannot learn the free space of %s: %s", self.job.name, self.root, err.strerror
            )
            return 0
        return rules.shortfall(self.job.cleanup.keep_free, free, total)

    def _delete_due(self) -> None:
        job = self.job
        age_cut = (
            self.now - job.cleanup.delete_after if job.cleanup.delete_after is not None else None
        )
        need = self._pressure()
        before = rules.due_before(self.now, job.cleanup.delete_after, need)
        if before is None:
            return
        rows = self.store.cleanup.due(
            self.job_id,
            before,
            self.now,
            job.cleanup.max_deletes,
            actions=job.actions.on_done is not None,
        )
        chosen = rules.choose(rows, age_cut, need, job.cleanup.max_deletes)
        for dir_id, cands in rules.by_dir(chosen).items():
            if need > 0:
                need = self._pressure()
                due = rules.still_due(cands, need, age_cut)
                if due is None:
                    break  # enough is free
                cands = due
            if cands:
                self._delete_group(dir_id, cands)

    # -- one directory ----------------------------------------------------------------------
    def _delete_group(self, dir_id: int, cands: list[Candidate]) -> None:
        beat(DESTINATION)  # its copies are looked at first
        rel = self.tree.rel.get(dir_id)
        if rel is None or rules.below_any(dir_id, self.unreadable, self.tree.rows):
            return  # its directory could not be read in this cycle: nothing in it is deleted
        group = _Group(dir_id, rel)
        folder = os.path.join(self.root_str, rel) if rel else self.root_str
        if not self._plain_path(rel, folder):
            group.dropped = cands  # excluded, or reached through a symlink: never deleted
            self._resolve(group)
            return
        try:  # every look and unlink below is relative to this one directory
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as err:
            log.warning("%s: cleanup leaves %s alone: %s", self.job.name, folder, err.strerror)
            return
        try:
            self._delete_in(group, fd, cands)
        finally:
            os.close(fd)

    def _delete_in(self, group: _Group, fd: int, cands: list[Candidate]) -> None:
        dir_id, rel = group.dir_id, group.rel
        dir_mtime = self.now
        done = self.store.dirs.confirmed_entries(dir_id, (c.name for c in cands))
        work = self.store.files.names(dir_id)
        patterns = bool(self.excluded.patterns)
        checked: list[Candidate] = []
        for c in cands:
            excluded = patterns and self.excluded(c.name, join(rel, c.name))
            look = rules.first_look(
                c, done.get(c.name), c.name in work, excluded, self.now, self.job.settle
            )
            if look == "drop":
                group.dropped.append(c)  # in work again; a new confirmation enrolls it anew
            elif look == "defer":
                group.deferred.append((c, rules.settled_at(c, self.job.settle)))  # young
            else:
                checked.append(c)  # the source is looked at right before its unlink
        cleared = self._verify(group, checked) if checked else []
        if self.dry_run:  # what a real run would delete: rule 2 too, without the unlink
            self.result.would_delete += [
                join(rel, c.name) for c in cleared if _deletable_now(fd, c)
            ]
            return
        if cleared:
            dir_mtime = os.fstat(fd).st_mtime  # before the unlinks touch it
            self.store.cleanup.journal(dir_id, cleared)
            crashpoint("cleanup-journaled")
            for c in cleared:
                self._unlink(group, fd, c)
            for c in group.deleted:
                self.audit.add(self.audit.entry(join(rel, c.name), c, recovered=False))
            self.result.deleted += len(group.deleted)
            self.result.bytes += sum(c.size for c in group.deleted)
            self.audit.write()
            crashpoint("cleanup-audited")
        self._resolve(group)
        crashpoint("cleanup-resolved")
        if group.deleted and self.job.cleanup.delete_empty_dirs:
            self._remove_empty(dir_id, dir_mtime)

    def _plain_path(self, rel: str, folder: str) -> bool:
        """The directory is not excluded and is reached without following a symlink."""
        if rules.excluded_dir(rel, self.excluded):
            return False
        return os.path.realpath(folder) == os.path.join(self.real_root, rel).rstrip("/")

    def _changed(self, group: _Group, c: Candidate, st: os.stat_result) -> None:
        """The source is not the file that was confirmed: it is sent again, not deleted."""
        self._say(
            f"kept {printable(join(group.rel, c.name))}: changed or replaced since its copy was "
            "confirmed; it is sent again, not deleted",
            logging.INFO,
        )
        group.dropped.append(c)
        if stat.S_ISREG(st.st_mode):
            # seen anew, whatever its size and mtime say: a replaced file may show the old ones
            group.requeue.append(Pending(c.name, st.st_size, st.st_mtime_ns, SEEN, since=self.now))

    def _verify(self, group: _Group, checked: list[Candidate]) -> list[Candidate]:
        """The files whose copy the destination holds now; the others are sent again."""
        copies = self.transport.verify_copies(group.rel, [c.name for c in checked])
        cleared: list[Candidate] = []
        for c in checked:
            why = rules.copy_problem(copies.get(c.name), c)
            if why is None:
                cleared.append(c)
                continue
            self._say(f"kept {printable(join(group.rel, c.name))}: {why}; sending it again")
            group.dropped.append(c)
            group.requeue.append(
                Pending(c.name, c.size, c.mtime_ns, QUEUED, since=self.now, queued_at=self.now)
            )
        return cleared

    def _unlink(self, group: _Group, fd: int, c: Candidate) -> None:
        try:
            st = os.lstat(c.name, dir_fd=fd)  # immediately before the unlink: rule 2
        except FileNotFoundError:
            group.dropped.append(c)  # gone already: nothing to delete
            return
        except OSError as err:
            self._failed(group, c, f"cannot look at it: {err.strerror}")
            return
        if not rules.deletable(st, c):
            self._changed(group, c, st)
            return
        beat(SOURCE)  # a long cleanup that moves is never a hang
        try:
            os.unlink(c.name, dir_fd=fd)
        except FileNotFoundError:
            group.dropped.append(c)  # someone else deleted it meanwhile
            return
        except OSError as err:
            self._failed(group, c, f"cannot delete it: {err.strerror}")
            return
        crashpoint("cleanup-unlinked")
        group.deleted.append(c)

    def _failed(self, group: _Group, c: Candidate, reason: str) -> None:
        path = printable(f"{self.root_str}/{join(group.rel, c.name)}")
        self._say(f"cannot clean up {path}: {reason}; tried again later")
        group.failed.append((c, reason, rules.retry_at(c, self.now)))
        self.result.failed += 1

    def _resolve(self, group: _Group) -> None:
        failed = group.failed
        failed += [(c, None, when) for c, when in group.deferred]
        if not (group.deleted or group.dropped or failed or group.kept or group.requeue):
            return
        self.store.cleanup.resolve(
            self.job_id,
            group.dir_id,
            group.deleted,
            group.kept,
            group.dropped,
            failed,
            group.requeue,
            time.time(),
        )

    def _remove_empty(self, dir_id: int, dir_mtime: float) -> None:
        """Remove the directory cleanup left empty, then its parents (never the root, never
        one younger than ``settle``); rmdir refuses a directory that is not empty."""
        while dir_id != self.tree.root and rules.may_remove(self.now, dir_mtime, self.job.settle):
            row = self.tree.rows.get(dir_id)
            if row is None:
                return
            folder = self.root / self.tree.rel[dir_id]
            try:
                parent_mtime = os.lstat(folder.parent).st_mtime
                os.rmdir(folder)
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    log.warning(
                        "%s: cannot remove the empty directory %s: %s",
                        self.job.name,
                        folder,
                        err.strerror,
                    )
                return
            log.info("%s: removed the empty directory %s", self.job.name, folder)
            if self.store.dirs.forget(dir_id):
                self.tree.forget(dir_id)
            dir_id, dir_mtime = row.parent, parent_mtime

    # -- after a crash ----------------------------------------------------------------------
    def recover(self) -> None:
        """Resolve the deletions a killed run journaled, from what the source shows now."""
        interrupted = self.store.cleanup.interrupted(self.job_id)
        if not interrupted:
            return
        seen = self.audit.audited()
        for dir_id, cands in rules.by_dir(interrupted).items():
            rel = self.tree.rel.get(dir_id)
            if rel is None:
                continue  # a directory cleanup removed keeps no candidate: not reached
            group = _Group(dir_id, rel)
            for c in cands:
                path = self.root / rel / c.name
                try:
                    st: os.stat_result | None = os.lstat(path)
                except FileNotFoundError:
                    st = None
                except OSError as err:
                    log.warning(
                        "%s: cannot resolve the interrupted deletion of %s: %s",
                        self.job.name,
                        printable(str(path)),
                        err.strerror,
                    )
                    continue
                found = rules.recovered(st, c)
                if found == "kept":
                    group.kept.append(c)  # not deleted: it is looked at again from scratch
                elif found == "changed":
                    assert st is not None
                    log.warning(
                        "%s: %s changed while an interrupted run was deleting it; it is sent again",
                        self.job.name,
                        printable(f"{self.root_str}/{join(rel, c.name)}"),
                    )
                    self._changed(group, c, st)
                else:
                    group.deleted.append(c)
                    entry = self.audit.entry(join(rel, c.name), c, recovered=True)
                    if audit_key(entry) not in seen:
                        self.audit.add(entry)
            self.audit.write()
            crashpoint("cleanup-recovery-audited")
            self._resolve(group)
            if group.deleted:
                log.info(
                    "%s: resolved %d deletions an interrupted run had begun",
                    self.job.name,
                    len(group.deleted),
                )

    def _say(self, message: str, level: int = logging.WARNING) -> None:
        self._warned += 1
        if self._warned <= _LOG_EACH:
            log.log(level, "%s: %s", self.job.name, message)


def _deletable_now(fd: int, c: Candidate) -> bool:
    try:
        st = os.lstat(c.name, dir_fd=fd)
    except OSError:
        return False
    return rules.deletable(st, c)

"""Source cleanup: delete a source file once its copy is confirmed and verified (opt-in).

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
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from globus_autosync.config import Job
from globus_autosync.errors import JobError, TransportError
from globus_autosync.model.crashpoint import crashpoint
from globus_autosync.model.plan import QUEUED, SEEN, Pending, backoff
from globus_autosync.sources.local.listing import Excluder, join
from globus_autosync.sources.local.walk import DirTree
from globus_autosync.store import Candidate, Enrolled, Store
from globus_autosync.transports import Transport

log = logging.getLogger(__name__)

AUDIT_NAME = "deletions.jsonl"
_LOG_EACH = 20  # per-file warnings per cycle before they are summed up
_AUDIT_TAIL = 1 << 20  # bytes of the audit log read back to resolve an interrupted deletion


@dataclass
class CleanupResult:
    deleted: int = 0
    bytes: int = 0
    failed: int = 0
    requeued: int = 0  # copies missing or different at the destination: sent again
    would_delete: list[str] = field(default_factory=list)
    problem: str | None = None  # the destination could not be looked at: stopped early


def audit_path(state_dir: Path) -> Path:
    return state_dir / "log" / AUDIT_NAME


def free_space(path: Path) -> tuple[int, int]:
    """(free bytes for an unprivileged user, total bytes) of the file system holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize


@dataclass
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

    def __init__(
        self,
        job: Job,
        store: Store,
        tree: DirTree,
        transport: Transport,
        state_dir: Path,
        now: float,
        *,
        dry_run: bool = False,
        unreadable: Iterable[int] = (),
    ) -> None:
        self.job, self.store, self.tree, self.transport = job, store, tree, transport
        self.state_dir, self.now, self.dry_run = state_dir, now, dry_run
        self.job_id = tree.job_id
        self.unreadable = set(unreadable)  # directories this cycle could not list
        self.excluded = Excluder(job.exclude)
        self.root = Path(job.source)
        self.root_str = str(self.root).rstrip("/") or "/"
        self.real_root = os.path.realpath(self.root)
        self.dest_root = job.destination.rstrip("/")
        self.result = CleanupResult()
        self._warned = 0
        self._audit: list[str] = []
        self._stamp: tuple[int, str, str] = (-1, "", "")  # (second, line head, line middle)

    # -- the step ---------------------------------------------------------------------------
    def run(self) -> CleanupResult:
        """Delete what is due (the cycle calls ``recover`` first, before its walk)."""
        if not self.job.cleanup.enabled:
            if self.store.cleanup_enrolled(self.job_id) is not None:
                self.store.cleanup_off(self.job_id)
            return self.result
        if self.store.cleanup_enrolled(self.job_id) is None:
            self.enroll_all()
        try:
            self._delete_due()
        except TransportError as err:
            message = f"cleanup stopped, the destination cannot be looked at: {err}"
            log.warning("%s: %s", self.job.name, message)
            self.result.problem = message
        if self._warned > _LOG_EACH:
            log.warning("%s: ... and %d more files kept or not deleted", self.job.name,
                        self._warned - _LOG_EACH)  # fmt: skip
        return self.result

    def enroll_all(self) -> None:
        """Files confirmed before cleanup was on (or before ``baseline``) become candidates,
        as if confirmed now: one lstat each, once."""
        started = time.monotonic()
        count = 0
        for dir_id in self.store.dirs_with_done(self.job_id):
            rel = self.tree.rel.get(dir_id)
            if rel is None:
                continue
            done = self.store.done_listing(dir_id)
            found: list[Enrolled] = []
            try:
                fd = os.open(os.path.join(self.root_str, rel), os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                continue  # gone or unreadable: its files are enrolled by a later enrolment
            try:
                for name, (size, mtime) in done.items():
                    try:
                        st = os.lstat(name, dir_fd=fd)
                    except OSError:
                        continue
                    if stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) == (size, mtime):
                        found.append((dir_id, name, size, mtime, st.st_ino, st.st_ctime_ns))
            finally:
                os.close(fd)
            self.store.enroll_dir(self.job_id, found, self.now)
            count += len(found)
        self.store.set_cleanup_enrolled(self.job_id, self.now)
        log.info("%s: cleanup is on: %d confirmed files are candidates (%.1f s)", self.job.name,
                 count, time.monotonic() - started)  # fmt: skip

    def _pressure(self) -> int:
        """Bytes short of ``keep_free`` on the source's file system (0: none)."""
        if self.job.cleanup.keep_free is None:
            return 0
        try:
            free, total = free_space(self.root)
        except OSError as err:
            log.warning("%s: cannot learn the free space of %s: %s", self.job.name, self.root,
                        err.strerror)  # fmt: skip
            return 0
        return max(0, self.job.cleanup.keep_free.bytes_of(total) - free)

    def _delete_due(self) -> None:
        job = self.job
        age_cut = (
            self.now - job.cleanup.delete_after if job.cleanup.delete_after is not None else None
        )
        need = self._pressure()
        before = self.now if need > 0 else age_cut
        if before is None:
            return
        rows = self.store.cleanup_due(
            self.job_id,
            before,
            self.now,
            job.cleanup.max_deletes,
            actions=job.actions.on_done is not None,
        )
        chosen: list[Candidate] = []
        planned = 0
        for c in rows:  # oldest confirmation first
            if (age_cut is not None and c.confirmed < age_cut) or planned < need:
                chosen.append(c)
                planned += c.size
            else:
                break
        groups: dict[int, list[Candidate]] = {}
        for c in chosen:
            groups.setdefault(c.dir, []).append(c)
        for dir_id, cands in groups.items():
            if need > 0:
                need = self._pressure()
                if need <= 0 and age_cut is not None:
                    cands = [c for c in cands if c.confirmed < age_cut]
                elif need <= 0:
                    break  # enough is free
            if cands:
                self._delete_group(dir_id, cands)

    # -- one directory ----------------------------------------------------------------------
    def _delete_group(self, dir_id: int, cands: list[Candidate]) -> None:
        rel = self.tree.rel.get(dir_id)
        if rel is None or self._below_unreadable(dir_id):
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
        done = self.store.done_entries(dir_id, (c.name for c in cands))
        work = self.store.work_names(dir_id)
        checked: list[Candidate] = []
        for c in cands:
            if c.name in work or done.get(c.name) != (c.size, c.mtime_ns):
                group.dropped.append(c)  # in work again; a new confirmation enrolls it anew
            elif self.excluded.patterns and self.excluded(c.name, join(rel, c.name)):
                group.dropped.append(c)
            elif self.now - c.mtime_ns / 1e9 < self.job.settle:
                group.deferred.append((c, c.mtime_ns / 1e9 + self.job.settle))  # young
            else:
                checked.append(c)  # the source is looked at right before its unlink
        cleared = self._verify(group, checked) if checked else []
        if self.dry_run:  # what a real run would delete: rule 2 too, without the unlink
            self.result.would_delete += [join(rel, c.name) for c in cleared
                                         if _same_now(fd, c)]  # fmt: skip
            return
        if cleared:
            dir_mtime = os.fstat(fd).st_mtime  # before the unlinks touch it
            self.store.journal_deletions(dir_id, cleared)
            crashpoint("cleanup-journaled")
            for c in cleared:
                self._unlink(group, fd, c)
            self._audit += [self._audit_line(rel, c, recovered=False) for c in group.deleted]
            self.result.deleted += len(group.deleted)
            self.result.bytes += sum(c.size for c in group.deleted)
            self._write_audit()
            crashpoint("cleanup-audited")
        self._resolve(group)
        crashpoint("cleanup-resolved")
        if group.deleted and self.job.cleanup.delete_empty_dirs:
            self._remove_empty(dir_id, dir_mtime)

    def _below_unreadable(self, dir_id: int) -> bool:
        while dir_id in self.tree.rows:
            if dir_id in self.unreadable:
                return True
            dir_id = self.tree.rows[dir_id].parent
        return False

    def _plain_path(self, rel: str, folder: str) -> bool:
        """The directory is not excluded and is reached without following a symlink."""
        if rel:
            parts = rel.split("/")
            for i, part in enumerate(parts):
                if self.excluded(part, "/".join(parts[: i + 1])):
                    return False
        return os.path.realpath(folder) == os.path.join(self.real_root, rel).rstrip("/")

    def _changed(self, group: _Group, c: Candidate, st: os.stat_result) -> None:
        """The source is not the file that was confirmed: it is sent again, not deleted."""
        self._say(f"kept {join(group.rel, c.name)}: changed or replaced since its copy was "
                  "confirmed; it is sent again, not deleted", logging.INFO)  # fmt: skip
        group.dropped.append(c)
        if stat.S_ISREG(st.st_mode):
            # seen anew, whatever its size and mtime say: a replaced file may show the old ones
            group.requeue.append(Pending(c.name, st.st_size, st.st_mtime_ns, SEEN, since=self.now))

    def _verify(self, group: _Group, checked: list[Candidate]) -> list[Candidate]:
        """The files whose copy the destination holds now; the others are sent again."""
        copies = self.transport.verify_copies(group.rel, [c.name for c in checked])
        cleared: list[Candidate] = []
        for c in checked:
            copy = copies.get(c.name)
            if copy is None:
                why = "its copy is missing at the destination"
            elif copy.size != c.size:
                why = f"its copy at the destination has {copy.size} bytes, not {c.size}"
            elif copy.mtime_ns is not None and copy.mtime_ns != c.mtime_ns:
                why = "its copy at the destination has another modification time"
            else:
                cleared.append(c)
                continue
            self._say(f"kept {join(group.rel, c.name)}: {why}; sending it again")
            group.dropped.append(c)
            group.requeue.append(
                Pending(c.name, c.size, c.mtime_ns, QUEUED, since=self.now, queued_at=self.now)
            )
            self.result.requeued += 1
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
        if not (_same(st, c) and stat.S_ISREG(st.st_mode)):
            self._changed(group, c, st)
            return
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
        path = self._source(join(group.rel, c.name))
        self._say(f"cannot clean up {path}: {reason}; tried again later")
        group.failed.append((c, reason, self.now + max(backoff(c.attempts + 1), 60.0)))
        self.result.failed += 1

    def _resolve(self, group: _Group) -> None:
        failed = group.failed
        failed += [(c, None, when) for c, when in group.deferred]
        if not (group.deleted or group.dropped or failed or group.kept or group.requeue):
            return
        self.store.resolve_deletions(
            self.job_id, group.dir_id, group.deleted, group.kept, group.dropped, failed,
            group.requeue, time.time(),
        )  # fmt: skip

    def _remove_empty(self, dir_id: int, dir_mtime: float) -> None:
        """Remove the directory cleanup left empty, then its parents (never the root, never
        one younger than ``settle``); rmdir refuses a directory that is not empty."""
        while dir_id != self.tree.root and self.now - dir_mtime >= self.job.settle:
            row = self.tree.rows.get(dir_id)
            if row is None:
                return
            folder = self.root / self.tree.rel[dir_id]
            try:
                parent_mtime = os.lstat(folder.parent).st_mtime
                os.rmdir(folder)
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    log.warning("%s: cannot remove the empty directory %s: %s", self.job.name,
                                folder, err.strerror)  # fmt: skip
                return
            log.info("%s: removed the empty directory %s", self.job.name, folder)
            if self.store.forget_dir(dir_id):
                self.tree.forget(dir_id)
            dir_id, dir_mtime = row.parent, parent_mtime

    # -- after a crash ----------------------------------------------------------------------
    def recover(self) -> None:
        """Resolve the deletions a killed run journaled, from what the source shows now."""
        interrupted = self.store.cleanup_interrupted(self.job_id)
        if not interrupted:
            return
        import json

        seen = self._audited()
        groups: dict[int, list[Candidate]] = {}
        for c in interrupted:
            groups.setdefault(c.dir, []).append(c)
        for dir_id, cands in groups.items():
            rel = self.tree.rel.get(dir_id)
            if rel is None:
                continue  # a directory cleanup removed keeps no candidate: not reached
            group = _Group(dir_id, rel)
            for c in cands:
                try:
                    st = os.lstat(self.root / rel / c.name)
                except FileNotFoundError:
                    st = None
                except OSError as err:
                    log.warning("%s: cannot resolve the interrupted deletion of %s: %s",
                                self.job.name, self.root / rel / c.name, err.strerror)  # fmt: skip
                    continue
                if st is not None and _same(st, c):
                    group.kept.append(c)  # not deleted: it is looked at again from scratch
                    continue
                if st is not None and st.st_ino == c.ino:
                    # rewritten in place, or (rarely) deleted and its inode number reused by a
                    # new file: whichever, the file there now is sent, never deleted
                    log.warning(
                        "%s: %s changed while an interrupted run was deleting it; it is sent again",
                        self.job.name,
                        self._source(join(rel, c.name)),
                    )
                    self._changed(group, c, st)
                    continue
                # gone, or another file in its place: the journaled one was deleted
                group.deleted.append(c)
                line = self._audit_line(rel, c, recovered=True)
                if self._audit_key(json.loads(line)) not in seen:
                    self._audit.append(line)
            self._write_audit()
            crashpoint("cleanup-recovery-audited")
            self._resolve(group)
            if group.deleted:
                log.info("%s: resolved %d deletions an interrupted run had begun", self.job.name,
                         len(group.deleted))  # fmt: skip

    # -- the audit log ----------------------------------------------------------------------
    def _source(self, relpath: str) -> str:
        return f"{self.root_str}/{relpath}"

    def _audit_line(self, rel: str, c: Candidate, recovered: bool) -> str:
        """One JSON object, written by hand (json.dumps of a dict per line was most of what a
        deletion cost in Python); keys: time, job, source, size, mtime_ns, ino, destination,
        destination_collection, batch, task_id, and recovered when the next run wrote it."""
        from json.encoder import encode_basestring as quote  # here: not every cycle needs it

        now = int(time.time())
        if now != self._stamp[0]:  # the same to the second for many lines: formatted once
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
            collection = self.job.globus.destination_collection
            self._stamp = (now, (
                f'{{"time": "{when}", "job": {quote(self.job.name)}, "source": '
            ), (
                f'"destination_collection": {quote(collection) if collection else "null"}, '
            ))  # fmt: skip
        _, head, middle = self._stamp
        relpath = join(rel, c.name)
        return (
            f"{head}{quote(self._source(relpath))}, "
            f'"size": {c.size}, "mtime_ns": {c.mtime_ns}, "ino": {c.ino}, '
            f'"destination": {quote(f"{self.dest_root}/{relpath}")}, {middle}'
            f'"batch": {c.batch if c.batch is not None else "null"}, '
            f'"task_id": {quote(c.task_id) if c.task_id else "null"}'
            + (', "recovered": true}' if recovered else "}")
        )

    @staticmethod
    def _audit_key(entry: dict[str, object]) -> tuple[object, ...]:
        """What identifies a deletion in the audit log."""
        return entry.get("source"), entry.get("mtime_ns"), entry.get("ino")

    def _audited(self) -> set[tuple[object, ...]]:
        """The deletions the end of the audit log already records."""
        path = audit_path(self.state_dir)
        try:
            with open(path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - _AUDIT_TAIL))
                tail = fh.read()
        except FileNotFoundError:
            return set()
        except OSError as err:
            raise JobError(f"cannot read the deletion log {path}: {err.strerror}") from None
        import json

        seen = set()
        for raw in tail.splitlines():
            try:
                seen.add(self._audit_key(json.loads(raw)))
            except (ValueError, AttributeError):
                continue  # the first line of the tail may be cut
        return seen

    def _write_audit(self) -> None:
        """Append the lines of the deletions made, durably, before they are resolved."""
        if not self._audit:
            return
        path = audit_path(self.state_dir)
        data = ("\n".join(self._audit) + "\n").encode("utf-8")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            try:
                end = os.fstat(fd).st_size
                if end and os.pread(fd, 1, end - 1) != b"\n":
                    data = b"\n" + data  # a line torn by a failed write stays a line of its own
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as err:
            # the deletions stay journaled: the next run writes their lines
            raise JobError(
                f"cannot write the deletion log {path}: {err.strerror}; fix it, then run again "
                "(the deletions made are journaled and recorded by the next run)"
            ) from None
        self._audit.clear()

    def _say(self, message: str, level: int = logging.WARNING) -> None:
        self._warned += 1
        if self._warned <= _LOG_EACH:
            log.log(level, "%s: %s", self.job.name, message)


def _same(st: os.stat_result, c: Candidate) -> bool:
    """The file at the source is the one that was confirmed: the same size and mtime, and the
    same inode with the same ctime (a reused inode number has a new ctime)."""
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns) == (
        c.size, c.mtime_ns, c.ino, c.ctime_ns,
    )  # fmt: skip


def _same_now(fd: int, c: Candidate) -> bool:
    try:
        st = os.lstat(c.name, dir_fd=fd)
    except OSError:
        return False
    return _same(st, c) and stat.S_ISREG(st.st_mode)

"""One sync cycle for one job: lock -> reconcile -> scan -> plan -> submit -> record -> act
(flows, commands: actions.py) -> clean up. What it did is a ``Summary`` (summary.py); a dry run
plans on a scratch copy with a stand-in transport (dryrun.py).

Every step leaves the store in a state the next cycle can carry on from: a batch is journaled
before it is submitted, and a file is confirmed only when the transport says it arrived.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from globus_autosync.config import Config, GlobusSettings, Job
from globus_autosync.engine.lock import JobLock
from globus_autosync.engine.summary import Summary, human_bytes
from globus_autosync.errors import (
    AuthError,
    AutosyncError,
    TransportError,
)
from globus_autosync.model.plan import FAILED, SEEN, SKIPPED, DirPlan, Pending, backoff
from globus_autosync.sources.local.listing import Listing, join
from globus_autosync.sources.local.walk import DirTree, Notices, WalkStats
from globus_autosync.store import BatchRow, Enrolled, QueuedFile, Store
from globus_autosync.transports import Item, TaskReport, Transport, make_transport
from globus_autosync.transports.base import (
    DONE,
    RETRY,
    SKIP,
    Outcome,
    WatchesCollections,
)
from globus_autosync.transports.dryrun import DryTransport, scratch_copy

if TYPE_CHECKING:
    from globus_autosync.actions.machine import Actions
    from globus_autosync.cleanup.cleaner import Cleaner
    from globus_autosync.sources import Source

log = logging.getLogger(__name__)

_LOG_EACH = 20  # per-file warnings per batch before they are summed up


class Cycle:
    """Runs one cycle of one job against an open store and transport."""

    def __init__(
        self,
        job: Job,
        store: Store,
        transport: Transport,
        dry_run: bool = False,
        batch_window: float | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[WalkStats], None] | None = None,
        state_dir: Path | None = None,
        config: Config | None = None,
        notices: Notices | None = None,
        source: Source | None = None,
    ) -> None:
        from globus_autosync.sources import make_source

        self.job, self.store, self.transport, self.dry_run = job, store, transport, dry_run
        # notices: the kernel's change notices for a local walk (``watch`` on Linux)
        self.source = source or make_source(job, transport, notices)
        self.state_dir = state_dir or store.path.parent
        self.progress = progress
        self.batch_window = batch_window  # None: send whatever is queued (``run``)
        self.should_stop = should_stop
        self.now = time.time()
        self.summary = Summary(job.name, dry_run=dry_run)
        self.job_id = store.job_id(job.name)
        self.tree = DirTree(store, self.job_id)
        self.reported: set[tuple[int, str]] = set()  # (dir, name) skipped by the transport
        self.actions: Actions | None = None
        if job.on_done and not dry_run:
            from globus_autosync.actions.machine import Actions

            self.actions = Actions(job, config or Config(Path("?"), (job,), GlobusSettings()),
                                   store, self.job_id, self.tree.rel, self.state_dir)  # fmt: skip

    def run(self, full: bool) -> Summary:
        started = time.monotonic()
        self.source.ready()
        self.transport.ready()
        cleaner = self._cleaner()
        if not self.dry_run:
            self.reconcile()
            # before the walk: a file in the place of one deleted is new, whatever its mtime
            if cleaner is not None:
                cleaner.recover()
            if isinstance(self.transport, WatchesCollections):  # Globus Connect Personal down?
                from globus_autosync.monitoring import endpoints

                self.summary.collections_down = endpoints.observe(
                    self.job, self.store, self.transport, self.now
                )
        full = full or self.now - self.store.last_full_scan(self.job_id) >= self.job.full_scan_every
        self.summary.full = full
        walked = self.source.walk(
            self.tree, self._apply, full, self.now, self.should_stop, self.progress
        )
        stats = walked.stats
        if walked.problem is not None:  # the source's service: the rest waits for next cycle
            self._transport_problem(walked.problem)
        if full and not self.dry_run and not walked.stopped:
            self.store.set_last_full_scan(self.job_id, self.now)
        self.summary.scanned, self.summary.dirs = stats.files, stats.dirs
        self.summary.changed = stats.changed
        self.summary.skipped += stats.skipped
        self.make_dirs(stats.empty_dirs)
        self.submit_all()
        self.summary.action_error = self._act() if self.actions is not None else None
        # cleanup acts only on a cycle that saw the source and the destination whole (rule 4)
        whole = self.summary.problem is None and not walked.stopped and not self.should_stop()
        if cleaner is not None and whole:
            cleaner.unreadable = stats.unreadable
            self._clean(cleaner)
        if not self.dry_run:  # a dry run's batches are never sent, so never in flight
            self.summary.in_flight = self.store.counts(self.job_id).submitted
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _act(self) -> AuthError | None:
        """Finish quiet datasets, start pending actions, look at running ones."""
        assert self.actions is not None
        try:
            result = self.actions.run(self.should_stop)
        finally:
            self.actions.close()
        self.summary.actions_started += result.started
        self.summary.actions_failed += result.failed
        self.summary.waiting += result.waiting
        if result.problem is not None and self.summary.problem is None:
            self.summary.problem = result.problem
        return result.auth

    def _cleaner(self) -> Cleaner | None:
        """Source cleanup's step, if the job has anything of it: cleanup on, candidates to
        forget now that it is off, or deletions an interrupted run journaled (cleanup.py is
        imported only then: a cron run's start-up counts)."""
        if not (
            self.job.cleanup
            or self.store.cleanup_enrolled(self.job_id) is not None
            or self.store.cleanup_interrupted(self.job_id)
        ):
            return None
        from globus_autosync.cleanup.cleaner import Cleaner

        return Cleaner(self.job, self.store, self.tree, self.transport, self.state_dir,
                       self.now, dry_run=self.dry_run)  # fmt: skip

    def _clean(self, cleaner: Cleaner) -> None:
        result = cleaner.run()
        self.summary.deleted += result.deleted
        self.summary.deleted_bytes += result.bytes
        self.summary.delete_failed += result.failed
        self.summary.failed += result.failed
        self.summary.would_delete = result.would_delete
        if result.problem is not None:
            self.summary.problem = result.problem

    def _apply(self, dir_id: int, plan: DirPlan, listing: Listing, mtime: int, ino: int) -> None:
        if self.reported and plan.deletes:
            # a file the transport skipped in this cycle's reconcile (it vanished from the
            # source) stays reported until a later listing, not forgotten by this very walk
            plan.deletes = [n for n in plan.deletes if (dir_id, n) not in self.reported]
        row = self.tree.rows[dir_id]
        if (
            plan.upserts
            or plan.deletes
            or plan.digest
            or plan.chunks
            or (row.mtime_ns, row.ino) != (mtime, ino)
        ):
            self.store.apply_dir(self.job_id, dir_id, plan, mtime, ino, None)
        # else: nothing to write; a no-change full walk makes no transaction per directory

    # -- reconcile ------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Resolve the batches in flight: resubmit journaled ones, confirm finished ones."""
        for batch in self.store.open_batches(self.job_id):
            files = self.store.batch_files(batch.id)
            items = [self._item(f) for f in files]
            if batch.task_id is None:
                task_id = self._submit(batch, items)
                if task_id is None:
                    return
                batch = batch._replace(task_id=task_id)
            self._poll(batch, files, items)

    def _item(self, f: QueuedFile) -> Item:
        return Item(join(self.tree.rel[f.dir], f.row.name), f.row.size, f.row.mtime_ns)

    def _submit(self, batch: BatchRow, items: list[Item]) -> str | None:
        try:
            task_id = self.transport.submit(batch.submission_id, batch.label, items)
        except TransportError as err:
            self._transport_problem(f"batch {batch.id} left for the next cycle: {err}")
            return None
        self.store.batch_submitted(batch.id, task_id, time.time())
        if self.dry_run:
            return task_id
        log.info("%s: batch %d submitted: %d files (%s), task %s", self.job.name, batch.id,
                 batch.files, human_bytes(batch.bytes), task_id)  # fmt: skip
        return task_id

    def _poll(self, batch: BatchRow, files: list[QueuedFile], items: list[Item]) -> None:
        assert batch.task_id is not None
        submitted = batch.submitted or batch.created
        try:
            report = self.transport.poll(batch.task_id, items, submitted)
        except TransportError as err:
            self._transport_problem(f"cannot learn the state of task {batch.task_id}: {err}")
            return
        if not report.finished:
            if report.reason is not None:
                self.summary.waiting += 1
            if report.reason != batch.reason:  # said once, and kept for ``status``
                if report.reason is not None:
                    log.warning("%s: batch %d: %s", self.job.name, batch.id, report.reason)
                else:
                    log.info("%s: batch %d: task %s is under way again", self.job.name,
                             batch.id, batch.task_id)  # fmt: skip
                self.store.note_batch(batch.id, report.reason)
            return
        self.resolve(batch, files, items, report)

    def resolve(
        self, batch: BatchRow, files: list[QueuedFile], items: list[Item], report: TaskReport
    ) -> None:
        now = time.time()
        done: list[QueuedFile] = []
        others: list[tuple[int, Pending]] = []
        warned = 0
        counts = {"failed": 0, "skipped": 0}
        for f, item in zip(files, items, strict=True):
            outcome = report.outcomes.get(item.relpath, Outcome("failed", report.reason))
            if outcome.result == DONE:
                done.append(f)
                continue
            row = f.row._replace(batch=None, reason=outcome.reason)
            if outcome.result == RETRY:
                row = row._replace(state=SEEN, since=now)
            elif outcome.result == SKIP:
                row = row._replace(state=SKIPPED)
                self.reported.add((f.dir, f.row.name))
            else:
                attempts = row.attempts + 1
                row = row._replace(state=FAILED, attempts=attempts,
                                   next_try=now + backoff(attempts))  # fmt: skip
            others.append((f.dir, row))
            if outcome.result in counts:
                counts[outcome.result] += 1
                warned += 1
                if warned <= _LOG_EACH:
                    log.warning("%s: %s %s: %s", self.job.name, outcome.result, item.relpath,
                                outcome.reason or "no reason given")  # fmt: skip
        if warned > _LOG_EACH:
            log.warning("%s: ... and %d more files failed or skipped in batch %d",
                        self.job.name, warned - _LOG_EACH, batch.id)  # fmt: skip
        ok = not counts["failed"] and report.reason is None
        state = "succeeded" if ok else "failed"
        enroll = self._enroll(done) if self.job.cleanup else None
        act = self.actions.on_resolved(batch.id, done, now) if self.actions else None
        self.store.resolve_batch(self.job_id, batch.id, state, report.reason, done, others, now,
                                 enroll, act)  # fmt: skip
        self.summary.confirmed += len(done)
        self.summary.failed += counts["failed"]
        self.summary.skipped += counts["skipped"]

    def _enroll(self, done: list[QueuedFile]) -> list[Enrolled]:
        """Confirmed files that cleanup may delete later, with the inode each has now; one
        that changed since it was sent is not among them (it is listed and sent again)."""
        out: list[Enrolled] = []
        for f in done:
            try:
                st = os.lstat(self.job.source / self.tree.rel[f.dir] / f.row.name)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) == (
                f.row.size, f.row.mtime_ns,
            ):  # fmt: skip
                out.append(
                    (f.dir, f.row.name, f.row.size, f.row.mtime_ns, st.st_ino, st.st_ctime_ns)
                )
        return out

    def _transport_problem(self, message: str) -> None:
        log.warning("%s: %s", self.job.name, message)
        self.summary.problem = message

    # -- submit ---------------------------------------------------------------------------
    def make_dirs(self, dir_ids: list[int]) -> None:
        if not dir_ids:
            return
        rels = {self.tree.rel[d]: d for d in dir_ids}
        errors = self.transport.mkdirs(list(rels))
        for rel, message in errors.items():
            log.warning("%s: cannot create directory %s: %s", self.job.name, rel or ".", message)
        self.summary.failed += len(errors)
        if not self.dry_run:
            self.store.mark_made(d for rel, d in rels.items() if rel not in errors)

    def submit_all(self) -> None:
        """Batch the queued files while the transport takes more."""
        while len(self.store.open_batches(self.job_id)) < self.transport.max_active:
            if self.should_stop():
                return
            files = self.store.queued(self.job_id, self.job.max_files_per_task)
            if not files:
                return
            if self.batch_window is not None and len(files) < self.job.max_files_per_task:
                oldest = min(f.row.queued_at or self.now for f in files)
                if time.time() < oldest + self.batch_window:
                    return  # wait for more files, unless the window has passed
            label = f"AUTO_{self.job.name}_{time.strftime('%Y-%m-%d_%H%M%S')}"
            try:
                sub = self.transport.new_submission_id()
            except TransportError as err:
                self._transport_problem(f"cannot start a batch now: {err}")
                return
            batch = self.store.create_batch(self.job_id, sub, label, files, time.time())
            items = [self._item(f) for f in files]
            self.summary.sent_files += len(items)
            self.summary.sent_bytes += batch.bytes
            task_id = self._submit(batch, items)
            if task_id is None:
                return
            if self.transport.synchronous:
                self._poll(batch._replace(task_id=task_id), files, items)


def run_job(
    job: Job,
    config: Config,
    state_dir: Path,
    *,
    dry_run: bool = False,
    full: bool = False,
    progress: Callable[[WalkStats], None] | None = None,
) -> Summary:
    """One cycle of one job, with its lock held (except for a dry run, which writes nothing)."""
    started = time.time()
    with ExitStack() as stack:
        real = make_transport(job, config, state_dir)
        stack.callback(real.close)
        if dry_run:
            store = scratch_copy(state_dir, stack)
            transport: Transport = DryTransport(real)
        else:
            stack.enter_context(JobLock(state_dir, job.name))
            store = Store.open(state_dir)
            transport = real
        stack.callback(store.close)
        try:
            with store.guard():
                cycle = Cycle(job, store, transport, dry_run, progress=progress,
                              state_dir=state_dir, config=config)  # fmt: skip
                summary = cycle.run(full)
        except AutosyncError as err:
            if not dry_run:  # `status` shows why the last run did not happen, if it can
                with suppress(AutosyncError, sqlite3.Error), store.guard():
                    job_id = store.job_id(job.name)
                    result = "waiting" if isinstance(err, AuthError) else "error"
                    store.record_run(job_id, started, time.time(), full, result, str(err))
            raise
        if dry_run:
            assert isinstance(transport, DryTransport)
            summary.would_send = [i.relpath for i in transport.items]
            summary.would_send += [f"{d}/" for d in transport.dirs]
        else:
            with store.guard():
                store.record_run(cycle.job_id, started, time.time(), summary.full,
                                 summary.result, summary.record, source_free(job))  # fmt: skip
    if summary.action_error is not None:  # the files were sent; a flow waits for a consent
        raise summary.action_error
    return summary


def source_free(job: Job) -> int | None:
    """The source's free bytes for the status page's history (jobs with cleanup), or None."""
    if not job.cleanup or job.scan == "globus":
        return None
    try:
        st = os.statvfs(job.source)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


@dataclass
class BaselineResult:
    job: str
    files: int = 0
    bytes: int = 0
    left: int = 0  # files at or after --before, left for the next run

    def line(self) -> str:
        text = (
            f"{self.job}: recorded {self.files} files ({human_bytes(self.bytes)}) as already "
            "transferred"
        )
        if self.left:
            text += f"; {self.left} newer files left for the next run"
        return text


def baseline_job(
    job: Job,
    state_dir: Path,
    before_ns: int | None,
    progress: Callable[[WalkStats], None] | None = None,
    config: Config | None = None,
) -> BaselineResult:
    """Record the files now in the source as transferred, without sending them (a source
    listed through Globus needs ``config`` for its credentials)."""
    from globus_autosync.sources import make_source

    result = BaselineResult(job.name)
    with ExitStack() as stack:
        transport = None
        if job.scan != "local":
            assert config is not None
            transport = make_transport(job, config, state_dir)
            stack.callback(transport.close)
        source = make_source(job, transport)
        source.ready()
        _baseline(job, state_dir, before_ns, progress, source, result)
    return result


def _baseline(
    job: Job,
    state_dir: Path,
    before_ns: int | None,
    progress: Callable[[WalkStats], None] | None,
    source: Source,
    result: BaselineResult,
) -> None:
    with JobLock(state_dir, job.name):
        store = Store.open(state_dir)
        try:
            with store.guard():
                job_id = store.job_id(job.name)
                tree = DirTree(store, job_id)

                def apply(
                    dir_id: int, plan: DirPlan, listing: Listing, mtime: int, ino: int
                ) -> None:
                    files = {
                        name: stats
                        for name, stats in listing.files.items()
                        if before_ns is None or stats[1] < before_ns
                    }
                    left = len(listing.files) - len(files)
                    store.confirm_baseline(dir_id, files)
                    # a directory with files left for later must be listed by the next run; one
                    # confirmed whole lists as confirmed: its digest spares the next full walk
                    noted = DirPlan() if left else DirPlan(digest=plan.digest)
                    store.apply_dir(job_id, dir_id, noted, mtime if not left else -1, ino, True)
                    result.files += len(files)
                    result.bytes += sum(size for size, _ in files.values())
                    result.left += left

                started = time.time()
                walked = source.walk(tree, apply, True, started, progress=progress, plan=False)
                if walked.problem is not None:
                    raise TransportError(f"job {job.name!r}: {walked.problem}; what was listed "
                                         "is recorded: run baseline again")  # fmt: skip
                if before_ns is None:  # everything is known now: the next run need not walk it all
                    store.set_last_full_scan(job_id, started)
                if job.cleanup:  # what baseline recorded becomes a candidate for cleanup too
                    store.set_cleanup_enrolled(job_id, None)
        finally:
            store.close()

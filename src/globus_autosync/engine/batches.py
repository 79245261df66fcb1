"""The batches of one cycle: reconcile those in flight (resubmit what was journaled, poll what
was submitted), batch and submit the queued files, and record what a finished task decided
(resolve.py) -- a batch is journaled before it is submitted, a file confirmed only when the
transport says it arrived.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from typing import TYPE_CHECKING

from globus_autosync.config.units import human_bytes
from globus_autosync.engine.summary import Summary
from globus_autosync.errors import REFUSED, Refused, TransportError
from globus_autosync.model.crashpoint import crashpoint
from globus_autosync.sources.base import join, printable
from globus_autosync.sources.context import CycleContext
from globus_autosync.store import BatchRow, Enrolled, QueuedFile
from globus_autosync.transports import Item, TaskReport

if TYPE_CHECKING:
    from globus_autosync.actions.machine import Actions
    from globus_autosync.engine.resolve import Resolution

log = logging.getLogger(__name__)

_LOG_EACH = 20  # per-file warnings per batch before they are summed up


class BatchRunner:
    """Sends the cycle's files in batches and follows them to their end."""

    def __init__(
        self,
        ctx: CycleContext,
        summary: Summary,
        actions: Actions | None,
        batch_window: float | None,
    ) -> None:
        self.ctx, self.summary, self.actions = ctx, summary, actions
        self.batch_window = batch_window  # None: send whatever is queued (``run``)
        self.skipped: set[tuple[int, str]] = set()  # (dir, name) skipped by the transport
        self.halted = False  # the transport cannot take work now: the rest waits for next cycle

    def problem(self, message: str) -> None:
        """The transport or the source's service failed: the rest waits for the next cycle."""
        log.warning("%s: %s", self.ctx.job.name, message)
        self.summary.problem = message

    # -- reconcile ------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Resolve the batches in flight: resubmit journaled ones, confirm finished ones."""
        store = self.ctx.store
        for batch in store.batches.unresolved(self.ctx.job_id):
            files = store.batches.files(batch.id)
            items = [self._item(f) for f in files]
            if batch.task_id is None:
                task_id = self._submit(batch, files, items)
                if task_id is None:
                    if self.halted:
                        return
                    continue  # refused for good, and resolved: the next batch
                batch = batch._replace(task_id=task_id)
            self._poll(batch, files, items)

    def _item(self, f: QueuedFile) -> Item:
        return Item(join(self.ctx.tree.rel[f.dir], f.row.name), f.row.size, f.row.mtime_ns)

    def _submit(self, batch: BatchRow, files: list[QueuedFile], items: list[Item]) -> str | None:
        """The batch's task id; None when it was not submitted: refused for good (the batch
        fails, its files back off; the others go on) or, with ``halted`` set, not now."""
        ctx = self.ctx
        try:
            task_id = ctx.transport.submit(batch.submission_id, batch.label, items)
        except Refused as err:
            log.error(
                "%s: batch %d refused, not sent: %s; its files are tried again later",
                ctx.job.name,
                batch.id,
                err,
            )
            self.summary.problem = f"batch {batch.id} refused: {err}"
            why = f"{REFUSED}{str(err).removeprefix(f'{ctx.job.name}: ')}"
            self._resolve(batch, files, items, TaskReport(True, reason=why, state="refused"))
            return None
        except TransportError as err:
            self.halted = True
            self.problem(f"batch {batch.id} left for the next cycle: {err}")
            return None
        ctx.store.batches.submitted(batch.id, task_id, time.time())
        if ctx.dry_run:
            return task_id
        log.info(
            "%s: batch %d submitted: %d files (%s), task %s",
            ctx.job.name,
            batch.id,
            batch.files,
            human_bytes(batch.bytes),
            task_id,
        )
        return task_id

    def _poll(self, batch: BatchRow, files: list[QueuedFile], items: list[Item]) -> None:
        assert batch.task_id is not None
        submitted = batch.submitted or batch.created
        try:
            report = self.ctx.transport.poll(batch.task_id, items, submitted)
        except TransportError as err:
            self.problem(f"cannot learn the state of task {batch.task_id}: {err}")
            return
        if not report.finished:
            if report.reason is not None:
                self.summary.waiting += 1
            if report.reason != batch.reason:  # said once, and kept for ``status``
                name = self.ctx.job.name
                if report.reason is not None:
                    log.warning("%s: batch %d: %s", name, batch.id, report.reason)
                else:
                    log.info(
                        "%s: batch %d: task %s is under way again", name, batch.id, batch.task_id
                    )
                self.ctx.store.batches.note(batch.id, report.reason)
            return
        self._resolve(batch, files, items, report)

    def _resolve(
        self, batch: BatchRow, files: list[QueuedFile], items: list[Item], report: TaskReport
    ) -> None:
        # here: resolve's records cost a quiet cycle, which resolves nothing, 1.2 ms to define
        from globus_autosync.engine.resolve import resolve

        ctx = self.ctx
        now = time.time()
        decided = resolve(files, [i.relpath for i in items], report, now)
        self._log(batch, decided)
        self.skipped.update(decided.skipped)
        enroll = self._enroll(decided.done) if ctx.job.cleanup.enabled else None
        act = self.actions.action_record(decided.done) if self.actions else None
        ctx.store.batches.resolve(
            ctx.job_id,
            batch.id,
            decided.state,
            decided.reason,
            decided.done,
            decided.others,
            now,
            enroll,
            act,
        )
        self.summary.confirmed += len(decided.done)
        self.summary.failed += decided.failed
        self.summary.skipped += len(decided.skipped)

    def _log(self, batch: BatchRow, decided: Resolution) -> None:
        name = self.ctx.job.name
        if decided.reason and not decided.undelivered:  # every file goes again: say why once
            log.warning("%s: batch %d: %s", name, batch.id, decided.reason)
        for u in decided.undelivered[:_LOG_EACH]:
            log.warning(
                "%s: %s %s: %s", name, u.result, printable(u.relpath), u.reason or "no reason given"
            )
        more = len(decided.undelivered) - _LOG_EACH
        if more > 0:
            log.warning(
                "%s: ... and %d more files failed or skipped in batch %d", name, more, batch.id
            )

    def _enroll(self, done: list[QueuedFile]) -> list[Enrolled]:
        """Confirmed files that cleanup may delete later, with the inode each has now; one
        that changed since it was sent is not among them (it is listed and sent again)."""
        out: list[Enrolled] = []
        for f in done:
            try:
                st = os.lstat(self.ctx.job.source / self.ctx.tree.rel[f.dir] / f.row.name)
            except OSError:
                continue
            same = (st.st_size, st.st_mtime_ns) == (f.row.size, f.row.mtime_ns)
            if stat.S_ISREG(st.st_mode) and same:
                out.append(
                    Enrolled(
                        f.dir, f.row.name, f.row.size, f.row.mtime_ns, st.st_ino, st.st_ctime_ns
                    )
                )
        return out

    # -- submit ---------------------------------------------------------------------------
    def submit_all(self) -> None:
        """Batch the queued files while the transport takes more."""
        ctx = self.ctx
        job, store, transport = ctx.job, ctx.store, ctx.transport
        while len(store.batches.unresolved(ctx.job_id)) < transport.max_active:
            if ctx.should_stop():
                return
            files = store.batches.queued(ctx.job_id, job.max_files_per_task)
            if not files:
                return
            if self.batch_window is not None and len(files) < job.max_files_per_task:
                oldest = min(f.row.queued_at or ctx.now for f in files)
                if time.time() < oldest + self.batch_window:
                    # wait for more files, unless the window has passed (``watch`` says so)
                    self.summary.window = (len(files), oldest + self.batch_window)
                    return
            # at most 123 characters: the Transfer service refuses a label over 128
            label = f"AUTO_{job.name[:100]}_{time.strftime('%Y-%m-%d_%H%M%S')}"
            try:
                sub = transport.new_submission_id()
            except TransportError as err:
                self.problem(f"cannot start a batch now: {err}")
                return
            batch = store.batches.create(ctx.job_id, sub, label, files, time.time())
            crashpoint("batch-journaled")  # journaled, not yet submitted
            items = [self._item(f) for f in files]
            self.summary.sent_files += len(items)
            self.summary.sent_bytes += batch.bytes
            task_id = self._submit(batch, files, items)
            if task_id is None:
                if self.halted:
                    return
                continue  # refused for good, and resolved: the next batch
            if transport.synchronous:
                self._poll(batch._replace(task_id=task_id), files, items)

"""One sync cycle of one job, in order: reconcile the batches in flight -> walk the source and
plan -> submit -> act (flows, commands: actions/) -> clean up (cleanup/). What it did is a
``Summary`` (summary.py); the batches are batches.py's, the lock and the run's record step.py's.

Every step leaves the store in a state the next cycle can carry on from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Set
from typing import TYPE_CHECKING

from globus_autosync.engine import mounts
from globus_autosync.engine.batches import BatchRunner
from globus_autosync.engine.summary import Summary
from globus_autosync.errors import AuthError
from globus_autosync.model.plan import DirPlan
from globus_autosync.sources import Source, make_source
from globus_autosync.sources.base import Listing, Notices, WalkStats, printable
from globus_autosync.sources.context import CycleContext
from globus_autosync.transports.base import WatchesCollections

if TYPE_CHECKING:
    from globus_autosync.actions.machine import Actions
    from globus_autosync.cleanup.deleter import Cleaner

log = logging.getLogger(__name__)


class Cycle:
    """Runs one cycle of one job against an open store and transport."""

    def __init__(
        self,
        ctx: CycleContext,
        *,
        batch_window: float | None = None,
        progress: Callable[[WalkStats], None] | None = None,
        notices: Notices | None = None,
        source: Source | None = None,
    ) -> None:
        self.ctx = ctx
        # notices: the kernel's change notices for a local walk (``watch`` on Linux)
        self.source = source or make_source(ctx.job, ctx.transport, notices)
        self.progress = progress
        self.summary = Summary(ctx.job.name, dry_run=ctx.dry_run)
        self.actions: Actions | None = None
        if ctx.job.actions.on_done and not ctx.dry_run:
            # here: actions/ costs a run without actions 6 ms
            from globus_autosync.actions.machine import Actions

            self.actions = Actions(ctx)
        self.batches = BatchRunner(ctx, self.summary, self.actions, batch_window)

    def run(self, full: bool) -> Summary:
        ctx, summary = self.ctx, self.summary
        started = time.monotonic()
        mounts.check(ctx.store, ctx.job, ctx.job_id)  # nothing from, or to, an unmounted share
        self.source.ready()
        ctx.transport.ready()
        cleaner = self._cleaner()
        if not ctx.dry_run:
            self.batches.reconcile()
            # before the walk: a file in the place of one deleted is new, whatever its mtime
            if cleaner is not None:
                cleaner.recover()
            if isinstance(ctx.transport, WatchesCollections):  # Globus Connect Personal down?
                # here: monitoring/endpoints costs a local run 2 ms
                from globus_autosync.monitoring import endpoints

                summary.collections_down = endpoints.observe(
                    ctx.job, ctx.store, ctx.transport, ctx.now
                )
        full = (
            full or ctx.now - ctx.store.jobs.last_full_scan(ctx.job_id) >= ctx.job.full_scan_every
        )
        summary.full = full
        walked = self.source.walk(
            ctx.tree, self._apply, full, ctx.now, ctx.should_stop, self.progress
        )
        stats = walked.stats
        if walked.problem is not None:  # the source's service: the rest waits for next cycle
            self.batches.problem(walked.problem)
        if not ctx.dry_run and not walked.stopped:
            if full:
                ctx.store.jobs.set_last_full_scan(ctx.job_id, ctx.now)
            ctx.store.unlistable.record(ctx.job_id, stats.problems, ctx.now)
        summary.scanned, summary.dirs, summary.listed = stats.files, stats.dirs, stats.listed
        summary.changed = stats.changed
        summary.skipped += stats.skipped
        self.make_dirs(stats.empty_dirs)
        self.batches.submit_all()
        summary.action_error = self._act() if self.actions is not None else None
        # cleanup acts only on a cycle that saw the source and the destination whole (rule 4)
        whole = summary.problem is None and not walked.stopped and not ctx.should_stop()
        if cleaner is not None and whole:
            self._clean(cleaner, stats.unreadable)
        if not ctx.dry_run:  # a dry run's batches are never sent, so never in flight
            counts = ctx.store.jobs.counts(ctx.job_id)
            summary.in_flight = counts.submitted
            summary.settling, summary.queued = counts.seen, counts.queued
        summary.seconds = time.monotonic() - started
        return summary

    def _act(self) -> AuthError | None:
        """Finish quiet datasets, start pending actions, look at running ones."""
        assert self.actions is not None
        try:
            result = self.actions.run(self.ctx.should_stop)
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
        forget now that it is off, or deletions an interrupted run journaled."""
        ctx = self.ctx
        if not (
            ctx.job.cleanup.enabled
            or ctx.store.cleanup.enrolled(ctx.job_id) is not None
            or ctx.store.cleanup.interrupted(ctx.job_id)
        ):
            return None
        # here: cleanup/ costs a run without cleanup 1 ms
        from globus_autosync.cleanup.deleter import Cleaner

        return Cleaner(ctx)

    def _clean(self, cleaner: Cleaner, unreadable: Set[int]) -> None:
        result = cleaner.run(unreadable)
        self.summary.deleted += result.deleted
        self.summary.deleted_bytes += result.bytes
        self.summary.delete_failed += result.failed
        self.summary.failed += result.failed
        self.summary.would_delete = result.would_delete
        if result.problem is not None:
            self.summary.problem = result.problem

    def _apply(self, dir_id: int, plan: DirPlan, listing: Listing, mtime: int, ino: int) -> None:
        ctx, skipped = self.ctx, self.batches.skipped
        if skipped and plan.deletes:
            # a file the transport skipped in this cycle's reconcile (it vanished from the
            # source) stays reported until a later listing, not forgotten by this very walk
            plan.deletes = [n for n in plan.deletes if (dir_id, n) not in skipped]
        row = ctx.tree.rows[dir_id]
        if (
            plan.upserts
            or plan.deletes
            or plan.digest
            or plan.chunks
            or (row.mtime_ns, row.ino) != (mtime, ino)
        ):
            ctx.store.dirs.apply(ctx.job_id, dir_id, plan, mtime, ino, None)
        # else: nothing to write; a no-change full walk makes no transaction per directory

    def make_dirs(self, dir_ids: list[int]) -> None:
        """Create the empty directories the walk found at the destination."""
        if not dir_ids:
            return
        ctx = self.ctx
        rels = {ctx.tree.rel[d]: d for d in dir_ids}
        errors = ctx.transport.mkdirs(list(rels))
        for rel, message in errors.items():
            shown = printable(rel) or "."
            log.warning("%s: cannot create directory %s: %s", ctx.job.name, shown, message)
        self.summary.failed += len(errors)
        if not ctx.dry_run:
            ctx.store.dirs.mark_made(d for rel, d in rels.items() if rel not in errors)

"""The one step that runs a cycle of a job, for ``run`` and ``watch`` alike: take the job's lock
-> cycle (cycle.py) under the store's guard -> record the run, or why it failed -> look at the
job's health and alerts. ``run`` calls it for each job in turn, ``watch`` when a job is due.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

from globus_autosync.config import Config, Job
from globus_autosync.engine.cycle import Cycle
from globus_autosync.engine.lock import JobLock
from globus_autosync.engine.summary import Summary
from globus_autosync.errors import AuthError, AutosyncError, LockHeld, Unmounted
from globus_autosync.sources.base import Notices, WalkStats, printable
from globus_autosync.sources.context import CycleContext, never
from globus_autosync.store import Store
from globus_autosync.store.heartbeats import Pulse
from globus_autosync.transports import Transport, make_transport
from globus_autosync.transports.dryrun import DryTransport, scratch_copy

log = logging.getLogger(__name__)

# what runs after a cycle: (job, store, transport, should_stop) -> None
After = Callable[[Job, Store, Transport, Callable[[], bool]], None]


@dataclass(frozen=True, slots=True)
class StepOptions:
    """How a step runs its cycle."""

    dry_run: bool = False  # plan on a scratch copy of the store, send nothing (``run`` only)
    full: bool = False  # walk the whole tree
    batch_window: float | None = None  # None: send whatever is queued (``run``)
    should_stop: Callable[[], bool] = never
    progress: Callable[[WalkStats], None] | None = None
    notices: Notices | None = None  # the kernel's change notices (``watch`` on Linux)
    due: bool = False  # learn when the job's next work falls due (``watch``)
    # work after the cycle, the job's lock still held (the scheduled audit: ``verify_every``)
    after: After | None = None


@dataclass(frozen=True, slots=True)
class Stepped:
    """What a step did."""

    summary: Summary
    # when work that was not due at the cycle's start falls due (asked with ``due``)
    due: float | None = None


def step(
    job: Job,
    config: Config,
    state_dir: Path,
    options: StepOptions = StepOptions(),
    *,
    store: Store | None = None,
    transport: Callable[[], Transport] | None = None,
) -> Stepped:
    """One cycle of one job with its lock held (a dry run's, on a scratch store, takes none).
    ``store`` and ``transport`` are a service's, kept open between its cycles; without them
    the step opens its own and closes them. Raises what stopped the cycle (``LockHeld``: the
    job is busy), after recording it; health and alerts are looked at whatever happened."""
    try:
        return _step(job, config, state_dir, options, store, transport)
    finally:
        if config.alerts.enabled and not options.dry_run:
            look_at_alerts(config, state_dir, job, store)


def _step(
    job: Job,
    config: Config,
    state_dir: Path,
    options: StepOptions,
    store: Store | None,
    transport: Callable[[], Transport] | None,
) -> Stepped:
    started = time.time()
    db = store
    dry_run = options.dry_run
    with ExitStack() as stack:
        try:
            if transport is None:
                real = make_transport(job, config, state_dir)
                stack.callback(real.close)
            else:
                real = transport()
            if dry_run:
                db = scratch_copy(state_dir, stack)
                stack.callback(db.close)
            else:
                stack.enter_context(JobLock(state_dir, job.name))
                if db is None:
                    db = Store.open(state_dir)
                    stack.callback(db.close)
            with db.guard():
                ctx = CycleContext.start(
                    job,
                    config,
                    db,
                    DryTransport(real) if dry_run else real,
                    state_dir=state_dir,
                    dry_run=dry_run,
                    should_stop=options.should_stop,
                )
                if not dry_run:  # its heartbeat, so that another process sees it hang
                    stack.enter_context(Pulse(db.path, ctx.job_id))
                cycle = Cycle(
                    ctx,
                    batch_window=options.batch_window,
                    progress=options.progress,
                    notices=options.notices,
                )
                summary = cycle.run(options.full)
                due = None
                if not dry_run:
                    db.cycles.record(
                        ctx.job_id,
                        started,
                        time.time(),
                        summary.full,
                        summary.result,
                        summary.record,
                        source_free(job),
                    )
                    # (not when the destination could not be reached: said by the cycle)
                    after = options.after
                    if after and summary.problem is None and not options.should_stop():
                        after(job, db, real, options.should_stop)
                    if options.due:
                        due = db.files.next_due(
                            ctx.job_id, job.settle, job.batch_window, cycle.source.trust_mtime
                        )
        except LockHeld:
            raise
        except Exception as err:
            if db is not None and not dry_run and not isinstance(err, OSError):
                _record_failure(db, job, started, err)
            raise
    if isinstance(ctx.transport, DryTransport):
        summary.would_send = [printable(i.relpath) for i in ctx.transport.items]
        summary.would_send += [f"{printable(d)}/" for d in ctx.transport.dirs]
    # what was due before the cycle began and still is waits on the transport
    return Stepped(summary, due if due is not None and due > ctx.now else None)


def _record_failure(store: Store, job: Job, started: float, err: Exception) -> None:
    """A cycle that could not run, for ``status`` and health."""
    result = "waiting" if isinstance(err, AuthError) else "error"
    if isinstance(err, Unmounted):
        result = "unmounted"
    with suppress(AutosyncError, sqlite3.Error), store.guard():
        job_id = store.jobs.ensure(job.name)
        store.cycles.record(job_id, started, time.time(), False, result, str(err))


def source_free(job: Job) -> int | None:
    """The source's free bytes for the status page's history (jobs with cleanup), or None."""
    if not job.cleanup.enabled or job.scan == "globus":
        return None
    try:
        st = os.statvfs(job.source)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def look_at_alerts(config: Config, state_dir: Path, job: Job, store: Store | None) -> None:
    """Say what changed in the job's health (monitoring/alerts.py); never raises."""
    # here: the alerts cost a run without them 1 ms
    from globus_autosync.monitoring import alerts

    if store is not None:
        alerts.after_cycles(config, store, [job])
        return
    try:
        store = Store.open(state_dir)
    except AutosyncError as err:
        log.warning("alerts not looked at: %s", err)
        return
    try:
        alerts.after_cycles(config, store, [job])
    finally:
        store.close()


def run_job(
    job: Job,
    config: Config,
    state_dir: Path,
    *,
    dry_run: bool = False,
    full: bool = False,
    progress: Callable[[WalkStats], None] | None = None,
    after: After | None = None,
) -> Summary:
    """The step as ``run`` takes it: a flow's missing login or consent, which let the files go
    on, is raised after the run is recorded."""
    options = StepOptions(dry_run=dry_run, full=full, progress=progress, after=after)
    summary = step(job, config, state_dir, options).summary
    if summary.action_error is not None:
        raise summary.action_error
    return summary

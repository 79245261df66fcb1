"""The scheduled audit (a job's ``verify_every``): ``run`` and ``watch`` audit the destination on
their own, a slice after a cycle, with the job's lock held: directories in the order of their id,
for at most ``SLICE`` seconds (one directory at least), so that sending never waits longer than
one slice. Where it stands is written after each directory (``audit_progress``), so the next
slice, in this process or after a restart or a kill -9, resumes there. One job audits at a time
in a process. A complete audit is recorded as ``verify`` records one (status, health, metrics,
and an alert when the destination lost something); ``verify_repair`` queues again what it can.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from globus_autosync.config import Job
from globus_autosync.model.crashpoint import crashpoint
from globus_autosync.monitoring.health import age
from globus_autosync.sources.base import relpaths
from globus_autosync.store import Audit, Progress, Store
from globus_autosync.store.heartbeats import DESTINATION, beat
from globus_autosync.verify.audit import deleted, destination_ready
from globus_autosync.verify.dirs import audit_dir
from globus_autosync.verify.result import SHOWN, JobAudit

log = logging.getLogger(__name__)

SLICE = 1.0  # seconds of auditing after a cycle
RETRY = 3600.0  # a failed audit (the destination could not be listed) is tried again this soon
_one_job = threading.Lock()  # watch cycles jobs on threads: one audits at a time


def due(job: Job, store: Store, job_id: int, now: float) -> bool:
    """Whether a job's scheduled audit should go on (or begin) now."""
    if job.verify_every is None:
        return False
    if store.audits.progress(job_id) is not None:
        return True
    latest = store.audits.latest(job_id)
    if latest is None:
        return True
    every = min(job.verify_every, RETRY) if latest.error is not None else job.verify_every
    return now - latest.finished >= every


def between_cycles(job: Job, store: Store, transport: Any, should_stop: Callable[[], bool]) -> None:
    """A slice of the job's scheduled audit, if one is due (after its cycle, its lock held)."""
    if job.verify_every is None:
        return
    job_id = store.jobs.find(job.name)
    if job_id is None or not due(job, store, job_id, time.time()):
        return
    if not _one_job.acquire(blocking=False):
        return  # another job audits now: this one's slice waits for its next cycle
    try:
        _slice(job, store, job_id, transport, should_stop)
    finally:
        _one_job.release()


def _slice(
    job: Job, store: Store, job_id: int, transport: Any, should_stop: Callable[[], bool]
) -> None:
    at = store.audits.progress(job_id)
    if at is None:
        at = Progress(time.time(), 0, 0, 0, 0, 0, 0, 0)
        log.info(
            "%s: audit of the destination begins (verify_every %s)",
            job.name,
            age(job.verify_every or 0),
        )
    result = JobAudit(job.name, at.confirmed, at.present, at.missing, at.different, at.unknown)
    result.repaired = job.verify_repair
    if not destination_ready(job, store, job_id, transport, result):
        _finish(job, store, job_id, result)
        return
    rel = relpaths(store, job_id)
    began, shown, done = time.monotonic(), 0, 0
    for dir_id in store.dirs.with_confirmed(job_id):
        if dir_id <= at.after_dir:
            continue
        if should_stop() or (done and time.monotonic() - began >= SLICE):
            return  # the next slice goes on from here (one directory at least a slice)
        done += 1
        beat(DESTINATION)
        ok = audit_dir(
            job, store, job_id, transport, dir_id, rel.get(dir_id, ""), result, job.verify_repair
        )
        if not ok:
            _finish(job, store, job_id, result)
            return
        shown = _say(job, result, shown)
        at = Progress(
            at.started,
            dir_id,
            at.dirs + 1,
            result.confirmed,
            result.present,
            result.missing,
            result.different,
            result.unknown,
        )
        store.audits.advance(job_id, at)
        crashpoint("audit-dir-saved")
    beat(DESTINATION)
    deleted(job, store, job_id, transport, rel, result, job.verify_repair)
    if _say(job, result, shown) > SHOWN:
        log.warning("%s: audit: ... and more ('globus-autosync verify' lists them)", job.name)
    _finish(job, store, job_id, result)


def _say(job: Job, result: JobAudit, shown: int) -> int:
    """Each problem found, as it is found: the first ``SHOWN`` of a slice, then a count at the
    end (``verify`` lists them all)."""
    for path, what in result.problems:
        if shown < SHOWN:
            log.warning("%s: audit: %s: %s", job.name, path, what)
        shown += 1
    result.problems.clear()
    return shown


def _finish(job: Job, store: Store, job_id: int, result: JobAudit) -> None:
    audit: Audit = result.remembered(time.time())
    store.audits.finish(job_id, audit)
    if result.error is not None:
        log.warning("%s: %s; tried again within %s", job.name, result.line(), age(RETRY))
    elif result.bad:
        log.warning("%s: audit of the destination: %s", job.name, result.line())
    else:
        log.info("%s: audit of the destination: %s", job.name, result.line())

"""One job's audit: compare the store's confirmed files with the destination, directory by
directory, and (``repair``) queue again what the source still has, record what it has not."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from globus_autosync.cleanup import audit as deletion_log
from globus_autosync.config import Config, Job
from globus_autosync.engine.lock import JobLock
from globus_autosync.errors import AutosyncError, TransportError
from globus_autosync.sources.base import join, printable, relpaths
from globus_autosync.store import Store
from globus_autosync.store.heartbeats import Pulse
from globus_autosync.store.names import unescape
from globus_autosync.transports import make_transport
from globus_autosync.verify.dirs import PARALLEL_FROM, audit_dir, failed, listed_ahead
from globus_autosync.verify.result import JobAudit


def audit_job(
    job: Job,
    config: Config,
    state_dir: Path,
    repair: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> JobAudit:
    """Audit one job (``repair``: under its lock, queue again or record as lost)."""
    result = JobAudit(job.name)
    if not repair:
        store = Store.open_readonly(state_dir)
        if store is None:
            return result  # nothing confirmed yet
    else:
        store = Store.open(state_dir)
    # a failing disk is one line (exit 3), not an internal error
    try:
        with store.guard():
            job_id = store.jobs.find(job.name)
            if job_id is None:
                return result
            transport = make_transport(job, config, state_dir)
            try:
                if repair:
                    with JobLock(state_dir, job.name), Pulse(store.path, job_id):
                        _audit(job, store, job_id, transport, result, progress, repair)
                else:
                    _audit(job, store, job_id, transport, result, progress, repair)
            finally:
                transport.close()
    finally:
        store.close()
    return result


def _audit(
    job: Job,
    store: Store,
    job_id: int,
    transport: Any,
    result: JobAudit,
    progress: Callable[[int, int], None] | None,
    repair: bool,
) -> None:
    rel = relpaths(store, job_id)
    if not destination_ready(job, store, job_id, transport, result):
        return
    result.repaired = repair
    dirs = list(store.dirs.with_confirmed(job_id))
    local = getattr(transport, "name", "") == "local"
    if local and store.dirs.confirmed_count(job_id) >= PARALLEL_FROM:
        if not listed_ahead(job, store, job_id, transport, dirs, rel, result, progress, repair):
            return
    else:
        for n, dir_id in enumerate(dirs):
            if progress is not None:
                progress(n, len(dirs))
            reldir = rel.get(dir_id, "")
            if not audit_dir(job, store, job_id, transport, dir_id, reldir, result, repair):
                return
    if progress is not None:
        progress(len(dirs), len(dirs))
    deleted(job, store, job_id, transport, rel, result, repair)


def destination_ready(
    job: Job, store: Store, job_id: int, transport: Any, result: JobAudit
) -> bool:
    """Whether the destination is there to be listed (else the audit failed, and says why)."""
    try:
        transport.ready()  # a destination not there (unmounted) is a failed audit, not a loss
        _roots_unchanged(store, job, job_id)
    except AutosyncError as err:
        result.error = str(err)
        return False
    return True


def deleted(
    job: Job,
    store: Store,
    job_id: int,
    transport: Any,
    rel: dict[int, str],
    result: JobAudit,
    repair: bool,
) -> None:
    """The files cleanup deleted from the source (its deletion log): their copies are the only
    ones left, so one missing is lost."""
    root = str(job.destination).rstrip("/") + "/"
    by_dir: dict[str, dict[str, dict[str, object]]] = {}
    for entry in deletion_log.every(store.path.parent, job.name):
        dest = unescape(str(entry.get("destination", "")))  # the log shows names printable
        if dest.startswith(root):
            reldir, _, name = dest[len(root) :].rpartition("/")
            by_dir.setdefault(reldir, {})[name] = entry  # the latest deletion of a name
    ids = {r: d for d, r in rel.items()}
    lost: list[tuple[str, str]] = []
    for reldir, entries in by_dir.items():
        dir_id = ids.get(reldir)
        again = store.dirs.confirmed(dir_id) if dir_id is not None else {}
        names = [n for n in entries if n not in again]  # confirmed again since: audited above
        if not names:
            continue
        try:
            held = transport.held(reldir)
        except TransportError as err:
            failed(result, reldir, err)
            return
        for name in names:
            result.confirmed += 1
            copy, entry = held.get(name), entries[name]
            path = printable(join(reldir, name))
            if copy is not None and copy[0] == entry.get("size"):
                result.present += 1
                continue
            result.missing += 1
            why = (
                f"deleted from the source by cleanup at {entry.get('time')} "
                f"(batch {entry.get('batch')})"
            )
            what = "missing" if copy is None else f"different: {copy[0]} bytes"
            result.problems.append((path, f"{what}; its source was {why}"))
            lost.append((path, why))
    if repair and lost:
        store.lost.record(job_id, lost, time.time())
        result.lost += len(lost)


def _roots_unchanged(store: Store, job: Job, job_id: int) -> None:
    """A local destination on another file system than it was (not mounted) is a failed
    audit: its files are not missing, it is."""
    from globus_autosync.engine.mounts import roots
    from globus_autosync.errors import Unmounted

    for side, path in roots(job):
        known = store.roots.get(job_id, side)
        try:
            device = os.stat(path).st_dev
        except OSError:
            continue
        if known is not None and known.path == str(path) and known.device != device:
            raise Unmounted(
                f"{side} {path} is not on the file system it was on ({known.fstype}): not "
                "mounted? Mount it, then verify again"
            )

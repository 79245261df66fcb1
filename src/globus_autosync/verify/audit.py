"""One job's audit: compare the store's confirmed files with the destination, directory by
directory, and (``repair``) queue again what the source still has, record what it has not."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from globus_autosync.cleanup import audit as deletion_log
from globus_autosync.config import Config, Job
from globus_autosync.engine.lock import JobLock
from globus_autosync.errors import AutosyncError, TransportError
from globus_autosync.sources.base import join, printable
from globus_autosync.store import Audit, Store
from globus_autosync.store.heartbeats import Pulse
from globus_autosync.store.names import unescape
from globus_autosync.transports import make_transport

SHOWN = 50  # problems listed, then a count


@dataclass
class JobAudit:
    """What an audit of one job found."""

    job: str
    confirmed: int = 0
    present: int = 0
    missing: int = 0
    different: int = 0
    unknown: int = 0  # files at the destination the store does not hold: counted only
    requeued: int = 0
    lost: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, what)
    error: str | None = None  # the destination could not be listed: nothing else is said
    repaired: bool = False  # what was wrong is queued again or recorded as lost

    @property
    def bad(self) -> bool:
        return bool(self.missing or self.different)

    def remembered(self, finished: float) -> Audit:
        """The audit as the store keeps it: what is still wrong (none once repaired), for
        status, the health and the metrics."""
        left = not self.repaired
        return Audit(
            finished,
            self.confirmed,
            self.missing if left else 0,
            self.different if left else 0,
            self.error,
        )

    def line(self) -> str:
        if self.error is not None:
            return f"{self.job}: audit failed: {self.error}"
        text = (
            f"{self.job}: {self.confirmed:,} confirmed, {self.present:,} at the destination, "
            f"{self.missing:,} missing, {self.different:,} different (size or mtime), "
            f"{self.unknown:,} unknown there (not ours, counted only)"
        )
        if self.requeued or self.lost:
            text += f"; {self.requeued:,} queued to be sent again, {self.lost:,} lost"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "confirmed": self.confirmed,
            "present": self.present,
            "missing": self.missing,
            "different": self.different,
            "unknown": self.unknown,
            "requeued": self.requeued,
            "lost": self.lost,
            "problems": [{"path": p, "what": w} for p, w in self.problems],
            "error": self.error,
        }


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
    try:
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
    for n, dir_id in enumerate(dirs):
        if progress is not None:
            progress(n, len(dirs))
        if not audit_dir(
            job, store, job_id, transport, dir_id, rel.get(dir_id, ""), result, repair
        ):
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


def _failed(result: JobAudit, reldir: str, err: TransportError) -> bool:
    """A destination directory that cannot be listed: the audit failed, with no list."""
    result.error = f"cannot list {printable(reldir) or '.'} at the destination: {err}"
    result.problems.clear()
    return False


def audit_dir(
    job: Job,
    store: Store,
    job_id: int,
    transport: Any,
    dir_id: int,
    reldir: str,
    result: JobAudit,
    repair: bool,
) -> bool:
    """One directory's confirmed files against the destination's listing of it, read after
    them (a file confirmed meanwhile is not missing); False when it cannot be listed."""
    confirmed = store.dirs.confirmed(dir_id)  # read before the listing: never a false alarm
    in_flight = store.files.names(dir_id)
    try:
        held = transport.held(reldir)
    except TransportError as err:
        return _failed(result, reldir, err)
    wrong: list[str] = []
    for name, (size, mtime_ns) in confirmed.items():
        if name in in_flight:
            continue  # sent again now: audited once confirmed
        result.confirmed += 1
        copy = held.get(name)
        if copy is None:
            result.missing += 1
            result.problems.append((printable(join(reldir, name)), "missing"))
            wrong.append(name)
        elif copy.size != size or (copy.mtime_ns is not None and copy.mtime_ns != mtime_ns):
            result.different += 1
            what = f"different: {copy.size} bytes, confirmed {size}"
            result.problems.append((printable(join(reldir, name)), what))
            wrong.append(name)
        else:
            result.present += 1
    result.unknown += len(held.keys() - confirmed.keys() - in_flight)
    if repair and wrong:
        _repair(job, store, job_id, dir_id, reldir, {n: confirmed[n] for n in wrong}, result)
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
            _failed(result, reldir, err)
            return
        for name in names:
            result.confirmed += 1
            copy, entry = held.get(name), entries[name]
            path = printable(join(reldir, name))
            if copy is not None and copy.size == entry.get("size"):
                result.present += 1
                continue
            result.missing += 1
            why = (
                f"deleted from the source by cleanup at {entry.get('time')} "
                f"(batch {entry.get('batch')})"
            )
            what = "missing" if copy is None else f"different: {copy.size} bytes"
            result.problems.append((path, f"{what}; its source was {why}"))
            lost.append((path, why))
    if repair and lost:
        store.lost.record(job_id, lost, time.time())
        result.lost += len(lost)


def _repair(
    job: Job,
    store: Store,
    job_id: int,
    dir_id: int,
    reldir: str,
    wrong: dict[str, tuple[int, int]],
    result: JobAudit,
) -> None:
    """What the source still has is queued again (as it was confirmed, or changed since: then
    it is sent as changed); what it has not is lost."""
    again, lost = [], []
    for name in wrong:
        if job.scan == "local" and (Path(job.source) / reldir / name).exists():
            again.append(name)
            continue
        path = printable(join(reldir, name))
        source = printable(f"{job.source}/{join(reldir, name)}")  # as the deletion log has it
        line = _deletion(store.path.parent, job.name, source)
        if job.scan != "local":
            why = "the source is listed through Globus: send it again by hand if it is there"
        elif line is not None:
            when, batch = line.get("time"), line.get("batch")
            why = f"deleted from the source by cleanup at {when} (batch {batch})"
        else:
            why = "gone from the source too (not by cleanup)"
        lost.append((path, why))
    if again:
        store.dirs.requeue(dir_id, again)
        result.requeued += len(again)
    if lost:
        store.lost.record(job_id, lost, time.time())
        result.lost += len(lost)
        result.problems.extend((p, f"lost: {why}") for p, why in lost)


def _deletion(state_dir: Path, job: str, source: str) -> dict[str, object] | None:
    """The deletion log's line for this source file, if cleanup deleted it."""
    found = None
    for entry in deletion_log.every(state_dir, job):
        if entry.get("source") == source:
            found = entry  # the latest deletion of that path
    return found


def relpaths(store: Store, job_id: int) -> dict[int, str]:
    rows = sorted(store.dirs.rows(job_id), key=lambda r: r.id)
    rel: dict[int, str] = {}
    for row in rows:
        rel[row.id] = join(rel.get(row.parent, ""), row.name) if row.parent else ""
    return rel


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

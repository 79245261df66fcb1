"""One directory of an audit: its confirmed files against the destination's copies, and (with
``repair``) what is queued again or recorded as lost. A local destination's directories are
listed by worker processes ahead of the comparison (``listed_ahead``), each only after its
confirmed listing was read, so that a file confirmed meanwhile is never "missing"."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from globus_autosync.cleanup import audit as deletion_log
from globus_autosync.config import Job
from globus_autosync.errors import TransportError
from globus_autosync.sources.base import join, printable
from globus_autosync.store import Store
from globus_autosync.transports.base import Held
from globus_autosync.verify.result import JobAudit

LISTERS = 2  # processes listing a local destination's directories ahead of the comparison
AHEAD = 200_000  # confirmed files in hand meanwhile, at most (one directory at least)
PARALLEL_FROM = 100_000  # confirmed files from which a local destination is listed so


def failed(result: JobAudit, reldir: str, err: TransportError) -> bool:
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
        return failed(result, reldir, err)
    _compare(job, store, job_id, dir_id, reldir, (confirmed, in_flight, held), result, repair)
    return True


def _compare(
    job: Job,
    store: Store,
    job_id: int,
    dir_id: int,
    reldir: str,
    found: tuple[dict[str, tuple[int, int]], set[str], Held],
    result: JobAudit,
    repair: bool,
) -> None:
    """A directory's confirmed files, the names in flight there, and the destination's copies."""
    confirmed, in_flight, held = found
    if not in_flight and held == confirmed:  # every copy as confirmed (compared in C)
        result.confirmed += len(confirmed)
        result.present += len(confirmed)
        return
    wrong: list[str] = []
    for name, (size, mtime_ns) in confirmed.items():
        if name in in_flight:
            continue  # sent again now: audited once confirmed
        result.confirmed += 1
        copy = held.get(name)  # (size, mtime_ns or None)
        if copy is None:
            result.missing += 1
            result.problems.append((printable(join(reldir, name)), "missing"))
            wrong.append(name)
        elif copy[0] != size or (copy[1] is not None and copy[1] != mtime_ns):
            result.different += 1
            what = f"different: {copy[0]} bytes, confirmed {size}"
            result.problems.append((printable(join(reldir, name)), what))
            wrong.append(name)
        else:
            result.present += 1
    result.unknown += len(held.keys() - confirmed.keys() - in_flight)
    if repair and wrong:
        _repair(job, store, job_id, dir_id, reldir, {n: confirmed[n] for n in wrong}, result)


def listed_ahead(
    job: Job,
    store: Store,
    job_id: int,
    transport: Any,
    dirs: list[int],
    rel: dict[int, str],
    result: JobAudit,
    progress: Callable[[int, int], None] | None,
    repair: bool,
) -> bool:
    """A large local destination: its directories listed by ``LISTERS`` worker processes ahead
    of the comparison (an ``lstat`` a file, which Python's threads would serialise), each only
    after its confirmed listing was read, up to ``AHEAD`` confirmed files in hand."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    from globus_autosync.store.heartbeats import DESTINATION, beat
    from globus_autosync.transports.local.copies import held_in

    Listing = Future[dict[str, tuple[int, int]]]
    waiting: deque[tuple[int, dict[str, tuple[int, int]], set[str], Listing]] = deque()
    in_hand, done = 0, 0

    def settle_one() -> bool:
        nonlocal in_hand, done
        dir_id, confirmed, in_flight, listing = waiting.popleft()
        in_hand -= len(confirmed)
        reldir = rel.get(dir_id, "")
        try:
            held = listing.result()
        except TransportError as err:
            return failed(result, reldir, err)
        beat(DESTINATION)
        _compare(job, store, job_id, dir_id, reldir, (confirmed, in_flight, held), result, repair)
        done += 1
        if progress is not None:
            progress(done, len(dirs))
        return True

    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of ours shared
    with ProcessPoolExecutor(LISTERS, mp_context=spawn) as pool:
        for dir_id in dirs:
            confirmed = store.dirs.confirmed(dir_id)  # before its listing: no false alarm
            in_flight = store.files.names(dir_id)
            listing = pool.submit(held_in, transport.folder(rel.get(dir_id, "")))
            waiting.append((dir_id, confirmed, in_flight, listing))
            in_hand += len(confirmed)
            while waiting and (in_hand > AHEAD or len(waiting) > 2 * LISTERS):
                if not settle_one():
                    pool.shutdown(cancel_futures=True)
                    return False
        while waiting:
            if not settle_one():
                pool.shutdown(cancel_futures=True)
                return False
    return True


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
    local = job.scan == "local"
    again = [n for n in wrong if local and (Path(job.source) / reldir / n).exists()]
    still = set(again)
    gone = [n for n in wrong if n not in still]
    # as the deletion log has them, read once for all of them
    sources = {n: printable(f"{job.source}/{join(reldir, n)}") for n in gone}
    lines = _deletions(store.path.parent, job.name, set(sources.values())) if local else {}
    lost = []
    for name in gone:
        line = lines.get(sources[name])
        if not local:
            why = "the source is listed through Globus: send it again by hand if it is there"
        elif line is not None:
            when, batch = line.get("time"), line.get("batch")
            why = f"deleted from the source by cleanup at {when} (batch {batch})"
        else:
            why = "gone from the source too (not by cleanup)"
        lost.append((printable(join(reldir, name)), why))
    if again:
        store.dirs.requeue(dir_id, again)
        result.requeued += len(again)
    if lost:
        store.lost.record(job_id, lost, time.time())
        result.lost += len(lost)
        result.problems.extend((p, f"lost: {why}") for p, why in lost)


def _deletions(state_dir: Path, job: str, sources: set[str]) -> dict[str, dict[str, object]]:
    """The deletion log's latest line for each of these source files cleanup deleted."""
    found: dict[str, dict[str, object]] = {}
    if sources:
        for entry in deletion_log.every(state_dir, job):
            source = entry.get("source")
            if isinstance(source, str) and source in sources:
                found[source] = entry
    return found

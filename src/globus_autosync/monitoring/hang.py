"""A hung job: its cycle has made no progress (no heartbeat: store/heartbeats.py) for
``hang_after`` while a process still holds the job's lock. Blocked in a system call on a share
that does not answer, the hung process cannot say so itself; any other process reads it here."""

from __future__ import annotations

from typing import NamedTuple

from globus_autosync.config import Job
from globus_autosync.store import Store
from globus_autosync.store.heartbeats import DESTINATION, lock_held


class Hang(NamedTuple):
    reason: str
    action: str


def _for(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def hung(store: Store, job: Job, job_id: int, now: float) -> Hang | None:
    """Why the job is hung, or None."""
    beat = store.heartbeats.current(job_id)
    if beat is None or now - beat.beat < job.hang_after:
        return None
    if not lock_held(store.path.parent, job.name):
        return None  # the process that left it died: its next cycle starts afresh
    stalled = _for(now - beat.beat)
    if beat.side == DESTINATION:
        if job.transport == "globus":
            return Hang(
                f"its destination (Globus) has not answered for {stalled}",
                "check this machine's network and https://status.globus.org; the job carries "
                "on by itself when it answers",
            )
        where = job.destination
    else:
        if job.scan == "globus":
            return Hang(
                f"its source (listed through Globus) has not answered for {stalled}",
                "check this machine's network and https://status.globus.org; the job carries "
                "on by itself when it answers",
            )
        where = str(job.source)
    side = "destination" if beat.side == DESTINATION else "source"
    return Hang(
        f"its {side} has not answered for {stalled} (pid {beat.pid} waits on it)",
        f"check the mount of {where} (a network share that hangs?); the job catches up by "
        "itself when it answers",
    )

"""A job's roots stay on the file system they were on. A network share that is not mounted
leaves its mount point: an empty directory of the parent file system, which a cycle would read
as "every file is gone" (and a local destination there would fill the wrong disk). So each job
records the device (``st_dev``) of its source root, and of a local destination's, when first
seen; a cycle that finds another device there, or a root that ``/etc/fstab`` mounts and that is
not mounted, does nothing: one line, exit 3, health ``failing``. A source moved on purpose is
accepted with ``globus-autosync check --accept-device``.
"""

from __future__ import annotations

import os
from pathlib import Path

from globus_autosync.config import Job
from globus_autosync.errors import Unmounted
from globus_autosync.sources.local.fstype import mount_of
from globus_autosync.store import Root, Store

FSTAB = "/etc/fstab"
_NOT_MOUNTS = {"swap", "none", "proc", "sysfs", "devpts", "tmpfs"}


def roots(job: Job) -> list[tuple[str, Path]]:
    """The job's roots on this machine's file systems: (side, path)."""
    out: list[tuple[str, Path]] = []
    if job.scan == "local":
        out.append(("source", Path(job.source)))
    if job.transport == "local":
        out.append(("destination", Path(job.destination)))
    return out


def check(store: Store, job: Job, job_id: int) -> None:
    """Raise ``Unmounted`` when a root is not on the file system it was on; record a root seen
    for the first time (or given a new path in the configuration)."""
    for side, path in roots(job):
        try:
            device = os.stat(path).st_dev
        except OSError:
            continue  # missing or unreadable: the source's or transport's ready() says so
        meant = fstab_mount(path)
        if meant is not None:
            raise Unmounted(
                f"job {job.name!r}: {side} {path} is not mounted ({meant} is a mount point in "
                f"{FSTAB}, and nothing is mounted there); mount it (e.g. 'mount {meant}'); "
                "nothing was sent or deleted"
            )
        known = store.roots.get(job_id, side)
        if known is None or known.path != str(path):
            store.roots.accept(job_id, side, Root(str(path), device, mount_of(path)[1]))
        elif known.device != device:
            raise Unmounted(
                f"job {job.name!r}: {side} {path} is not on the file system it was on "
                f"({known.fstype}): not mounted? Mount it; if it moved on purpose, run "
                f"'globus-autosync check --accept-device --job {job.name}'; nothing was sent "
                "or deleted"
            )


def accept(store: Store, job: Job) -> list[str]:
    """Record the file systems the job's roots are on now (``check --accept-device``)."""
    job_id = store.jobs.ensure(job.name)
    lines = []
    for side, path in roots(job):
        device = os.stat(path).st_dev
        kind = mount_of(path)[1]
        store.roots.accept(job_id, side, Root(str(path), device, kind))
        lines.append(f"{job.name}: {side} {path} accepted on its file system ({kind})")
    return lines


def fstab_mount(path: Path, fstab: str = FSTAB) -> str | None:
    """The mount point in ``fstab`` that holds ``path`` (itself or an ancestor) when nothing is
    mounted there; None when every such mount point is mounted (or none is listed)."""
    try:
        with open(fstab, encoding="utf-8", errors="replace") as table:
            lines = table.read().splitlines()
    except OSError:
        return None
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith("#") or fields[2] in _NOT_MOUNTS:
            continue
        point = fields[1].replace("\\040", " ")
        if point != "/" and point.startswith("/"):
            points.append(point.rstrip("/"))
    if not points:
        return None
    want = os.path.abspath(path)
    for point in sorted(points, key=len, reverse=True):
        if (want == point or want.startswith(point + "/")) and mount_of(point)[0] != point:
            return point
    return None

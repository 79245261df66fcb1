"""Enrolment: when cleanup is turned on, the files confirmed before become candidates, as if
confirmed now (one ``lstat`` each, once).
"""

from __future__ import annotations

import logging
import os
import stat
import time

from globus_autosync.sources.base import DirTree
from globus_autosync.store import Enrolled, Store

log = logging.getLogger(__name__)


def enroll_all(store: Store, tree: DirTree, root: str, now: float, job_name: str) -> None:
    """Files confirmed before cleanup was on (or before ``baseline``) become candidates of the
    tree's job, whose source is ``root``."""
    started = time.monotonic()
    count = 0
    for dir_id in store.dirs.with_confirmed(tree.job_id):
        rel = tree.rel.get(dir_id)
        if rel is None:
            continue
        done = store.dirs.confirmed(dir_id)
        found: list[Enrolled] = []
        try:
            fd = os.open(os.path.join(root, rel), os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue  # gone or unreadable: its files are enrolled by a later enrolment
        try:
            for name, (size, mtime) in done.items():
                try:
                    st = os.lstat(name, dir_fd=fd)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) == (size, mtime):
                    found.append(Enrolled(dir_id, name, size, mtime, st.st_ino, st.st_ctime_ns))
        finally:
            os.close(fd)
        store.cleanup.enroll_dir(tree.job_id, found, now)
        count += len(found)
    store.cleanup.set_enrolled(tree.job_id, now)
    seconds = time.monotonic() - started
    log.info(
        "%s: cleanup is on: %d confirmed files are candidates (%.1f s)", job_name, count, seconds
    )

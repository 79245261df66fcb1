"""The local filesystem as a source: the existing walker (walk.py) behind the source seam."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from globus_autosync.config import Job
from globus_autosync.errors import JobError
from globus_autosync.sources.base import (
    Apply,
    DirTree,
    Excluder,
    Listing,
    Notices,
    Walked,
    WalkStats,
    names_checked,
)
from globus_autosync.sources.local.listing import list_dir
from globus_autosync.sources.local.walk import Walker


class LocalSource:
    kind = "local"
    trust_mtime = True

    def __init__(self, job: Job, notices: Notices | None = None) -> None:
        self.job = job
        self.notices = notices  # the kernel's change notices (``watch``): an accelerator only

    def ready(self) -> None:
        try:
            is_dir = stat.S_ISDIR(os.stat(self.job.source).st_mode)
        except FileNotFoundError:
            is_dir = False
        except OSError as err:  # a share gone stale (ESTALE), down (ENOTCONN), failing (EIO)
            raise JobError(
                f"job {self.job.name!r}: source {self.job.source}: {err.strerror}; check that "
                "the instrument's disk or share is mounted and answers; the next cycle tries "
                "again"
            ) from None
        if not is_dir:
            raise JobError(
                f"job {self.job.name!r}: source {self.job.source} is not a readable directory; "
                "check the 'source' key and that the instrument's disk is mounted"
            )

    def list_dir(self, rel: str) -> Listing:
        path = os.path.join(self.job.source, rel) if rel else str(self.job.source)
        return list_dir(
            path,
            rel,
            Excluder(self.job.exclude, names_checked(self.job.transport)),
            self.job.symlinks == "follow",
        )

    def walk(
        self,
        tree: DirTree,
        apply: Apply,
        full: bool,
        now: float,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[WalkStats], None] | None = None,
        *,
        plan: bool = True,
    ) -> Walked:
        walker = Walker(
            self.job,
            tree.store,
            tree,
            apply,
            now,
            should_stop,
            progress,
            plan=plan,
            notices=self.notices,
        )
        stats = walker.run(full)
        return Walked(stats, walker.stopped)

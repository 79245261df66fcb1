"""``baseline``: record the files now in a job's source as already transferred, without sending
them, under the job's lock; ``--before`` leaves the newer ones for the next run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from globus_autosync.config import Config, Job
from globus_autosync.config.units import human_bytes
from globus_autosync.engine.lock import JobLock
from globus_autosync.errors import TransportError
from globus_autosync.model.plan import DirPlan
from globus_autosync.sources import Source, make_source
from globus_autosync.sources.base import DirTree, Listing, WalkStats
from globus_autosync.store import Store
from globus_autosync.transports import make_transport


@dataclass
class BaselineResult:
    job: str
    files: int = 0
    bytes: int = 0
    left: int = 0  # files at or after --before, left for the next run

    def line(self) -> str:
        text = (
            f"{self.job}: recorded {self.files} files ({human_bytes(self.bytes)}) as already "
            "transferred"
        )
        if self.left:
            text += f"; {self.left} newer files left for the next run"
        return text


def baseline_job(
    job: Job,
    state_dir: Path,
    before_ns: int | None,
    progress: Callable[[WalkStats], None] | None = None,
    config: Config | None = None,
) -> BaselineResult:
    """Record the files now in the source as transferred, without sending them (a source
    listed through Globus needs ``config`` for its credentials)."""
    result = BaselineResult(job.name)
    with ExitStack() as stack:
        transport = None
        if job.scan != "local":
            assert config is not None
            transport = make_transport(job, config, state_dir)
            stack.callback(transport.close)
        source = make_source(job, transport)
        source.ready()
        _baseline(job, state_dir, before_ns, progress, source, result)
    return result


def _baseline(
    job: Job,
    state_dir: Path,
    before_ns: int | None,
    progress: Callable[[WalkStats], None] | None,
    source: Source,
    result: BaselineResult,
) -> None:
    with JobLock(state_dir, job.name):
        store = Store.open(state_dir)
        try:
            with store.guard():
                job_id = store.jobs.ensure(job.name)
                tree = DirTree(store, job_id)

                def apply(
                    dir_id: int, plan: DirPlan, listing: Listing, mtime: int, ino: int
                ) -> None:
                    files = {
                        name: stats
                        for name, stats in listing.files.items()
                        if before_ns is None or stats[1] < before_ns
                    }
                    left = len(listing.files) - len(files)
                    store.dirs.confirm_baseline(dir_id, files)
                    # a directory with files left for later must be listed by the next run; one
                    # confirmed whole lists as confirmed: its digest spares the next full walk
                    noted = DirPlan() if left else DirPlan(digest=plan.digest)
                    store.dirs.apply(job_id, dir_id, noted, mtime if not left else -1, ino, True)
                    result.files += len(files)
                    result.bytes += sum(size for size, _ in files.values())
                    result.left += left

                started = time.time()
                walked = source.walk(tree, apply, True, started, progress=progress, plan=False)
                if walked.problem is not None:
                    raise TransportError(
                        f"job {job.name!r}: {walked.problem}; what was listed "
                        "is recorded: run baseline again"
                    )
                if before_ns is None:  # everything is known now: the next run need not walk it all
                    store.jobs.set_last_full_scan(job_id, started)
                if (
                    job.cleanup.enabled
                ):  # what baseline recorded becomes a candidate for cleanup too
                    store.cleanup.set_enrolled(job_id, None)
        finally:
            store.close()

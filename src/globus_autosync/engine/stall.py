"""``run``'s guard against a hung job: the job's step runs on a thread of its own while this
thread reads the job's heartbeat (store/heartbeats.py). When the step has made no progress for
``hang_after`` (a share whose server does not answer), the run says so, through the alerts too,
and goes on with its other jobs, leaving the blocked thread behind; the run then ends with
``EXIT_HUNG`` (the process's end releases the job's lock, so the next cron run tries again).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from globus_autosync.config import Config, Job
from globus_autosync.engine.step import look_at_alerts
from globus_autosync.errors import AutosyncError, Hung
from globus_autosync.monitoring.hang import hung
from globus_autosync.store import Store

T = TypeVar("T")
LOOK_EVERY = 0.5  # seconds between two looks at the heartbeat


def unless_stalled(job: Job, config: Config, state_dir: Path, work: Callable[[], T]) -> T:
    """``work()``'s answer (or what it raised); ``Hung`` once the job's cycle has made no
    progress for ``hang_after``."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["answer"] = work()
        except BaseException as err:  # handed to the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target, name=f"job {job.name}", daemon=True)
    started = time.time()
    thread.start()
    while True:
        thread.join(LOOK_EVERY)
        if not thread.is_alive():
            break
        if time.time() - started >= job.hang_after:
            stuck = _hang(job, config, state_dir)
            if stuck is not None:
                raise Hung(stuck)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["answer"]  # type: ignore[return-value]


def _hang(job: Job, config: Config, state_dir: Path) -> str | None:
    """The line of a hung job (alerts sent), or None while its cycle moves."""
    try:
        store = Store.open_readonly(state_dir)
    except AutosyncError:
        return None
    if store is None:
        return None
    try:
        job_id = store.jobs.find(job.name)
        found = hung(store, job, job_id, time.time()) if job_id is not None else None
    finally:
        store.close()
    if found is None:
        return None
    if config.alerts.enabled:
        look_at_alerts(config, state_dir, job, None)
    return f"job {job.name!r}: {found.reason}; {found.action}; this run goes on with the other jobs"

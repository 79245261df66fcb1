"""``watch``: the long-running service. Cycles every job on its own ``interval``.

It sleeps until the next job is due, or sooner when a file will settle or a batch window will
close, or (on Linux) when the kernel notices a change in a job's directories (``notify``): a
cycle then starts within a second, and looks only at the names noticed in the directories the
notices vouch for. So a file that stops changing is in a submitted batch within about
settle + batch_window + 1 s (settle + batch_window + interval without notices).
SIGTERM/SIGINT finish the step in hand and exit 0; SIGHUP
reloads the configuration (a bad one is logged and the old one kept). Each cycle is the same
step as ``run``'s (step.py): the job's lock, the cycle, its record, health and alerts.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from globus_autosync import config as config_mod
from globus_autosync.config import Config, Job
from globus_autosync.engine.lock import ServiceLock
from globus_autosync.engine.step import StepOptions, step
from globus_autosync.engine.summary import Summary
from globus_autosync.errors import AutosyncError, LockHeld, job_line, os_error
from globus_autosync.sources.local.inotify import DirWatch
from globus_autosync.store import Store
from globus_autosync.transports import Transport, make_transport

log = logging.getLogger(__name__)

HEARTBEAT = 3600.0
MAX_BACKOFF = 300.0
TICK = 0.2  # how often a sleeping watcher looks at its signal flags and its change notices
NOTICE_GAP = 0.5  # seconds from the start of a job's cycle before a notice starts another


@dataclass
class JobState:
    job: Job
    transport: Transport | None = None
    due: float = 0.0
    started: float = 0.0  # of its last cycle
    notices: DirWatch | None = None
    tried_notices: bool = False
    failures: int = 0
    action_error: str | None = None  # the last missing-consent message of the job's actions
    totals: dict[str, int] = field(default_factory=lambda: {"confirmed": 0, "failed": 0})

    def open_transport(self, config: Config, state_dir: Path) -> Transport:
        """The job's transport, made at its first cycle and kept for the next ones."""
        if self.transport is None:
            self.transport = make_transport(self.job, config, state_dir)
        return self.transport


class Watcher:
    def __init__(self, config: Config, state_dir: Path, job_name: str | None) -> None:
        self.config, self.state_dir, self.job_name = config, state_dir, job_name
        self.services: dict[str, ServiceLock] = {}
        try:  # before anything else: one service per job
            for j in config.select(job_name):
                self.services[j.name] = ServiceLock(state_dir, j.name).__enter__()
        except AutosyncError:
            self._release(list(self.services))
            raise
        self.jobs = {j.name: JobState(j) for j in config.select(job_name)}
        self.stop = False
        self.reload = False
        self.store = Store.open(state_dir)
        self.last_heartbeat = time.monotonic()

    # -- signals --------------------------------------------------------------------------
    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop = True

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reload = True

    def _reload(self) -> None:
        self.reload = False
        try:
            new = config_mod.load(self.config.path)
            jobs = new.select(self.job_name)
        except AutosyncError as err:
            log.error("configuration not reloaded, keeping the running one: %s", err)
            return
        old = self.jobs
        self.jobs = {}
        for job in jobs:
            if job.name not in self.services:
                try:
                    self.services[job.name] = ServiceLock(self.state_dir, job.name).__enter__()
                except AutosyncError as err:
                    log.error("%s; not served by this watch", err)
                    continue
            state = old.pop(job.name, None)
            if state is not None and state.job == job:
                self.jobs[job.name] = state
            else:
                self.jobs[job.name] = JobState(job)
                if state is not None:
                    _close(state)
        for state in old.values():
            _close(state)
        self._release([name for name in self.services if name not in self.jobs])
        self.config = new
        log.info("configuration reloaded from %s: %d job(s)", new.path, len(self.jobs))

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        log.info("watch: started, %d job(s): %s", len(self.jobs), ", ".join(self.jobs))
        try:
            while not self.stop:
                if self.reload:
                    self._reload()
                now = time.time()
                for state in list(self.jobs.values()):
                    if self.stop:
                        break
                    if state.due <= now:
                        self._cycle(state)
                self._heartbeat()
                self._sleep_until(min((s.due for s in self.jobs.values()), default=now + 60))
        finally:
            for state in self.jobs.values():
                _close(state)
            self.store.close()
            self._release(list(self.services))
        log.info("watch: stopped")

    def _release(self, names: list[str]) -> None:
        for name in names:
            self.services.pop(name).release()

    def _sleep_until(self, when: float) -> None:
        while not self.stop and not self.reload and time.time() < when:
            time.sleep(min(TICK, max(0.0, when - time.time())))
            for state in self.jobs.values():
                # a job backing off after an error is not woken early
                if state.notices is not None and not state.failures and state.notices.readable():
                    state.due = min(state.due, max(time.time(), state.started + NOTICE_GAP))
                    when = min(when, state.due)

    def _cycle(self, state: JobState) -> None:
        job = state.job
        state.started = time.time()
        try:
            if not state.tried_notices:
                state.tried_notices = True
                state.notices = DirWatch.open(job.name, job.symlinks == "follow")
            options = StepOptions(
                batch_window=job.batch_window,
                should_stop=lambda: self.stop,
                notices=state.notices,
                due=True,
            )
            stepped = step(
                job,
                self.config,
                self.state_dir,
                options,
                store=self.store,
                transport=lambda: state.open_transport(self.config, self.state_dir),
            )
        except LockHeld as err:
            log.debug("%s", err)
            state.due = time.time() + job.interval
            return
        except AutosyncError as err:
            self._failed(state, job_line(err, job.name))
            return
        except OSError as err:  # a failing disk, not a bug: one line, no traceback
            self._failed(state, str(os_error(err, job.name)))
            return
        except Exception as err:  # a bug must not take the service down; it is logged in full
            log.exception("%s: unexpected error: %s", job.name, err)
            self._failed(state, f"unexpected error: {err}")
            return
        state.failures = 0
        self._report(state, stepped.summary)
        state.due = time.time() + job.interval
        # what fell due while the cycle ran (a file that settled meanwhile) is for the next
        # cycle, at once
        if stepped.due is not None:
            state.due = min(state.due, stepped.due + 0.05)

    def _failed(self, state: JobState, message: str) -> None:
        state.failures += 1
        wait = min(MAX_BACKOFF, state.job.interval * 2 ** min(state.failures, 10))
        log.error("%s; trying again in %.0f s", message, wait)
        state.due = time.time() + wait

    def _report(self, state: JobState, summary: Summary) -> None:
        # a flow's missing consent: said when it changes; the files keep going meanwhile
        error = str(summary.action_error) if summary.action_error is not None else None
        if error is not None and error != state.action_error:
            log.error("%s", error)
        state.action_error = error
        state.totals["confirmed"] += summary.confirmed
        state.totals["failed"] += summary.failed
        if not summary.quiet:  # a cycle that did nothing logs nothing
            level = logging.INFO if summary.exit_code == 0 else logging.WARNING
            log.log(level, "%s", summary.line())

    def _heartbeat(self) -> None:
        if time.monotonic() - self.last_heartbeat < HEARTBEAT:
            return
        self.last_heartbeat = time.monotonic()
        parts = [
            f"{s.job.name}: {s.totals['confirmed']} confirmed, {s.totals['failed']} failed"
            for s in self.jobs.values()
        ]
        log.info("watch: alive; in the last hour %s", "; ".join(parts) or "no jobs")
        for s in self.jobs.values():
            s.totals = {"confirmed": 0, "failed": 0}


def _close(state: JobState) -> None:
    if state.transport is not None:
        state.transport.close()
    if state.notices is not None:
        state.notices.close()

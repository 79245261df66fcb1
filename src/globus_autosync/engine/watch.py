"""``watch``: the long-running service. Cycles every job on its own ``interval``.

Each job's cycles run on a thread of its own, so a job blocked in a system call (a share whose
server does not answer, a request that never returns) holds up no other job; this loop, which
only schedules, reads the blocked job's heartbeat (store/heartbeats.py) and says the hang, in the
log and through the alerts, once it has lasted ``hang_after``.

It sleeps until the next job is due, or sooner when a file will settle or a batch window will
close, or (on Linux) when the kernel notices a change in a job's directories (``notify``): a
cycle then starts within a second, and looks only at the names noticed in the directories the
notices vouch for. So a file that stops changing is in a submitted batch within about
settle + batch_window + 1 s (settle + batch_window + interval without notices). A source that
other machines write (a network share: sources/local/fstype.py) gets no notice of their writes,
so it is polled every ``interval``, as ``run`` does; its notices only wake the loop up early.
SIGTERM/SIGINT finish the step in hand and exit 0 within ``STOP_WAIT`` seconds (leaving a job
blocked on a share behind); SIGHUP reloads the configuration (a bad one is logged and the old
one kept). Each cycle is the same step as ``run``'s (step.py): the job's lock, the cycle, its
record, health and alerts.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from globus_autosync import config as config_mod
from globus_autosync.config import Config, Job
from globus_autosync.engine.lock import ServiceLock
from globus_autosync.engine.step import After, StepOptions, step
from globus_autosync.engine.summary import Summary
from globus_autosync.errors import AutosyncError, LockHeld, job_line, os_error
from globus_autosync.sources.local.fstype import kind_of
from globus_autosync.sources.local.inotify import DirWatch
from globus_autosync.store import Store
from globus_autosync.transports import Transport, make_transport

log = logging.getLogger(__name__)

HEARTBEAT = 3600.0
MAX_BACKOFF = 300.0
TICK = 0.2  # how often a sleeping watcher looks at its signal flags and its change notices
NOTICE_GAP = 0.5  # seconds from the start of a job's cycle before a notice starts another
STOP_WAIT = 8.0  # seconds SIGTERM waits for the jobs' cycles to finish the step in hand
WATCHDOG_EVERY = 2.0  # seconds between two looks at the heartbeats of long cycles


@dataclass
class JobState:
    """One job in ``watch``: its schedule, and what its thread keeps between its cycles."""

    job: Job
    transport: Transport | None = None
    store: Store | None = None  # the job's own connection, made and used in its thread
    due: float = 0.0
    started: float = 0.0  # of its last cycle
    notices: DirWatch | None = None
    tried_notices: bool = False
    failures: int = 0
    action_error: str | None = None  # the last missing-consent message of the job's actions
    totals: dict[str, int] = field(default_factory=lambda: {"confirmed": 0, "failed": 0})
    busy: bool = False  # a cycle runs (or is about to) in its thread
    quit: bool = False  # its thread ends after the cycle in hand
    hung: str | None = None  # the hang said in the log (health's reason), until it answers
    window_said: float | None = None  # the end of the batch window last said in the log
    go: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def open_transport(self, config: Config, state_dir: Path) -> Transport:
        """The job's transport, made at its first cycle and kept for the next ones."""
        if self.transport is None:
            self.transport = make_transport(self.job, config, state_dir)
        return self.transport


class Watcher:
    def __init__(
        self, config: Config, state_dir: Path, job_name: str | None, after: After | None = None
    ) -> None:
        self.config, self.state_dir, self.job_name = config, state_dir, job_name
        self.after = after  # work after each cycle (the scheduled audit)
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
        self.wake = threading.Event()  # a job's cycle ended
        self.store = Store.open(state_dir)  # the loop's own: it reads the jobs' heartbeats
        self.last_heartbeat = time.monotonic()
        self.last_watchdog = 0.0

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
                    _end(state)
        for state in old.values():
            _end(state)
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
                    if not state.busy and state.due <= now:
                        self._start(state)
                self._watchdog()
                self._heartbeat()
                idle = [s.due for s in self.jobs.values() if not s.busy]
                self._sleep_until(min(idle, default=now + 60))
        finally:
            self.close()
        log.info("watch: stopped")

    def close(self) -> None:
        """End every job's thread (a cycle in hand finishes its step; one blocked on a share
        that does not answer is left behind after ``STOP_WAIT``), then the loop's own parts."""
        for state in self.jobs.values():
            _end(state)
        deadline = time.monotonic() + STOP_WAIT
        for state in self.jobs.values():
            if state.thread is not None:
                state.thread.join(max(0.0, deadline - time.monotonic()))
                if state.thread.is_alive():
                    log.warning(
                        "%s: its cycle is still blocked (%s); stopping without it",
                        state.job.name,
                        state.hung or "on its source or destination",
                    )
            else:
                _close(state)
        self.store.close()
        self._release(list(self.services))

    def _release(self, names: list[str]) -> None:
        for name in names:
            self.services.pop(name).release()

    def _start(self, state: JobState) -> None:
        """The job's next cycle, on its thread (made at its first)."""
        state.busy = True
        if state.thread is None:
            state.thread = threading.Thread(
                target=self._work, args=(state,), name=f"job {state.job.name}", daemon=True
            )
            state.thread.start()
        state.go.set()

    def _work(self, state: JobState) -> None:
        """A job's thread: a cycle each time it is told to go, until told to end."""
        try:
            while True:
                state.go.wait()
                state.go.clear()
                if state.quit or self.stop:
                    return
                try:
                    self._cycle(state)
                finally:
                    state.busy = False
                    self.wake.set()
        finally:
            _close(state)

    def _sleep_until(self, when: float) -> None:
        self.wake.clear()
        while not self.stop and not self.reload and time.time() < when:
            if self.wake.wait(min(TICK, max(0.0, when - time.time()))):
                return  # a cycle ended: it may be due again at once
            for state in self.jobs.values():
                # a job backing off after an error is not woken early
                if state.busy or state.failures or state.notices is None:
                    continue
                if state.notices.readable():
                    state.due = min(state.due, max(time.time(), state.started + NOTICE_GAP))
                    when = min(when, state.due)
            if any(s.busy for s in self.jobs.values()):
                self._watchdog()

    def _watchdog(self) -> None:
        """A job whose cycle makes no progress is said (once, and through the alerts) by this
        loop, since its own thread, blocked, cannot."""
        now = time.time()
        if now - self.last_watchdog < WATCHDOG_EVERY:
            return
        self.last_watchdog = now
        for state in self.jobs.values():
            if not state.busy or state.hung or now - state.started < state.job.hang_after:
                continue
            from globus_autosync.monitoring import health  # here: only when a cycle is long

            try:
                found = health.assess(self.store, state.job, now)
            except AutosyncError as err:
                log.debug("%s: health not looked at: %s", state.job.name, err)
                continue
            if found.key != "failing:hung":
                continue
            state.hung = found.reason
            log.error("%s: %s; %s", state.job.name, found.reason, found.action)
            if self.config.alerts.enabled:
                from globus_autosync.monitoring import alerts

                alerts.after_cycles(self.config, self.store, [state.job])

    def _cycle(self, state: JobState) -> None:
        job = state.job
        state.started = time.time()
        try:
            if state.store is None:
                state.store = Store.open(self.state_dir)
            if not state.tried_notices:
                state.tried_notices = True
                state.notices = _notices(job)
            options = StepOptions(
                batch_window=job.batch_window,
                should_stop=lambda: self.stop or state.quit,
                notices=state.notices,
                due=True,
                after=self.after,
            )
            stepped = step(
                job,
                self.config,
                self.state_dir,
                options,
                store=state.store,
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
        finally:
            if state.hung is not None:
                took = time.time() - state.started
                log.info("%s: answers again after %.0f s; catching up", job.name, took)
                state.hung = None
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
        if summary.window is not None and summary.window[1] != state.window_said:
            files, ends = summary.window
            state.window_said = ends
            log.info(
                "%s: %d %s for the batch window; the batch goes at %s (batch_window %s)",
                state.job.name,
                files,
                "file waits" if files == 1 else "files wait",
                time.strftime("%H:%M:%S", time.localtime(ends)),
                f"{state.job.batch_window:g} s",
            )
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


def _notices(job: Job) -> DirWatch | None:
    """The kernel's change notices for a local source, and how ``watch`` finds its changes,
    said once: by the notices, or (a source other machines write: a network share) by polling
    every ``interval`` as ``run`` does, the notices then only waking it up early."""
    if job.scan != "local":
        return None
    kind = kind_of(job.source)
    if kind.local:
        log.info("%s: source %s: changes found by notices", job.name, job.source)
    else:
        log.info(
            "%s: source %s: %s every %s (another machine's writes there make no change notices)",
            job.name,
            job.source,
            kind.mode,
            f"{job.interval:g} s",
        )
    return DirWatch.open(job.name, job.symlinks == "follow", vouch=kind.local)


def _end(state: JobState) -> None:
    """Tell a job's thread to end after the cycle in hand (it closes what it holds)."""
    state.quit = True
    state.go.set()


def _close(state: JobState) -> None:
    if state.transport is not None:
        state.transport.close()
        state.transport = None
    if state.notices is not None:
        state.notices.close()
        state.notices = None
    if state.store is not None:
        state.store.close()
        state.store = None

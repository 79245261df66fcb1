"""Listing and planning directories in worker processes, beside the walk's own process.

A full walk stats every file of the tree, which is CPU-bound (system calls, and Python work per
file); on two cores, one worker process and the walk's own process together nearly halve its
time. ``Walker`` keeps the traversal and every SQL statement in its own process and hands each
directory over as a ``listwork.DirTask``; a worker runs ``listwork.work`` on it and sends back the
``DirResult``. A worker never touches the database. Only a full walk of a large tree imports this.

Workers are fresh interpreters (``python -c``: fork + exec, safe in a process with threads, such
as ``watch`` with its metrics server) that import only this module, listwork, scan, plan and
codec: about 30 ms of CPU, during which the walk lists in its own process. Messages are pickles
behind their length, on two pipes per worker. A worker ignores SIGINT (the walk that started it
ends it) and leaves when its task pipe closes. At most ``WINDOW`` tasks wait per worker, so the
memory of every process stays bounded by the largest directory.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import pickle
import select
import signal
import struct
import sys
import traceback
from collections import deque
from dataclasses import dataclass

from globus_autosync.errors import WorkerError
from globus_autosync.sources.base import Excluder
from globus_autosync.sources.local.listwork import DirResult, DirTask, Inline, Setup, work

log = logging.getLogger(__name__)

WINDOW = 3  # tasks given to a worker at once: one in hand, the next ones in its pipe
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_LENGTH = struct.Struct("!Q")


@dataclass(frozen=True, slots=True)
class Failure:
    """An unexpected exception in a worker, sent back to be raised by the walk."""

    error: BaseException
    trace: str


# -- messages: a pickle behind its length ----------------------------------------------------


def _send(fd: int, data: bytes) -> None:
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _recv(fd: int) -> bytes:
    """One message; EOFError when the pipe closed first."""
    (size,) = _LENGTH.unpack(_read(fd, _LENGTH.size))
    return _read(fd, size)


def _read(fd: int, size: int) -> bytes:
    out = bytearray(size)
    view, done = memoryview(out), 0
    while done < size:
        got = os.readv(fd, [view[done:]])
        if not got:
            raise EOFError
        done += got
    return bytes(out)


# -- the worker process ---------------------------------------------------------------------


def serve(rfd: int, wfd: int) -> None:
    """A worker's life: a Setup, a hello, then a DirResult (or Failure) per DirTask until the pipe
    closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the walk, which ends us
    gc.disable()  # a worker makes no reference cycles: collecting would only cost time (2 %)
    try:
        setup: Setup = pickle.loads(_recv(rfd))
        excluded = Excluder(setup.patterns, setup.check_names)
        _send(wfd, b"")  # hello: ready
        while True:
            task: DirTask = pickle.loads(_recv(rfd))
            try:
                data = pickle.dumps(work(setup, excluded, task), _PROTOCOL)
            except Exception as exc:
                data = _failure(exc)
            _send(wfd, data)
    except (EOFError, BrokenPipeError):
        pass  # the walk is over (or gone)
    os._exit(0)  # nothing to flush or finalize: leave at once


def _failure(exc: BaseException) -> bytes:
    trace = traceback.format_exc()
    try:
        return pickle.dumps(Failure(exc, trace), _PROTOCOL)
    except Exception:  # an exception that does not pickle
        return pickle.dumps(Failure(RuntimeError(repr(exc)), trace), _PROTOCOL)


# -- the walk's side ------------------------------------------------------------------------


class _Worker:
    def __init__(self, setup: bytes) -> None:
        import subprocess  # here: a worker does without it (2.4 ms of its start)

        task_r, self.tasks = os.pipe()
        self.results, result_w = os.pipe()
        command = f"from {__name__} import serve; serve({task_r}, {result_w})"
        try:
            if not sys.executable:
                raise OSError("no Python interpreter to start")
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                [sys.executable, "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(task_r, result_w),
                env=_worker_env(),
            )
        except BaseException:
            os.close(self.tasks)
            os.close(self.results)
            raise
        finally:
            os.close(task_r)
            os.close(result_w)
        self.room = _pipe_room(self.tasks)
        self.ready = False  # said hello
        self.inflight: deque[DirTask] = deque()  # sent, not answered: in order
        self.sizes: deque[int] = deque()  # their messages' sizes
        try:
            _send(self.tasks, setup)  # waits in the pipe while the worker starts
        except BaseException:
            self.end(kill=True)
            self.reap()
            raise

    def takes(self, size: int) -> bool:
        """Whether a message of ``size`` bytes may be sent now. An idle worker reads it; a busy
        one may be blocked sending a result, having read the task in hand: the pipe must then
        hold the tasks after it and this one, or both processes would wait for each other."""
        if not self.inflight:
            return True
        return len(self.inflight) < WINDOW and sum(self.sizes) - self.sizes[0] + size <= self.room

    def died(self) -> WorkerError:
        self.reap(close=False)
        code = self.proc.returncode
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        if self.inflight:
            doing = f"listing {self.inflight[0].path}"
        else:
            doing = "waiting for a directory" if self.ready else "starting"
        return WorkerError(f"a directory-listing worker process died ({how}) while {doing}")

    def end(self, kill: bool) -> None:
        os.close(self.tasks)  # a worker leaves at the end of its pipe
        if kill or self.inflight or not self.ready:  # nothing to wait for: not even started
            self.proc.kill()

    def reap(self, close: bool = True) -> None:
        import subprocess  # here: as in __init__

        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if close:
            os.close(self.results)


def _pipe_room(fd: int) -> int:
    """Bytes the task pipe holds with nobody reading it."""
    try:
        return int(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))
    except (AttributeError, OSError):
        return 4096  # PIPE_BUF, the least any pipe holds


def _worker_env() -> dict[str, str]:
    """The environment, with this package first on the path (whatever put it on ours)."""
    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


class Workers:
    """Worker processes, and this one: it lists a directory itself whenever no worker can take
    it, that is while they start, while each has ``WINDOW`` tasks, and for a task too large for
    the pipe of a busy worker (which may itself be blocked sending a large result: waiting for it
    could deadlock). So n workers and this process keep n + 1 cores busy. Results come back in
    order for each worker; a dead worker, or an exception in one, raises WorkerError here."""

    def __init__(self, count: int, setup: Setup) -> None:
        self.inline = Inline(setup)
        self.workers: dict[int, _Worker] = {}  # by the descriptor of its results
        self.held: list[tuple[DirTask, DirResult]] = []  # received, not yet collected
        self.poller = select.poll()
        data = pickle.dumps(setup, _PROTOCOL)
        try:
            for _ in range(count):
                worker = _Worker(data)
                self.workers[worker.results] = worker
                self.poller.register(worker.results, select.POLLIN)
        except BaseException:
            self.close(kill=True)
            raise

    @property
    def busy(self) -> int:
        inflight = sum(len(w.inflight) for w in self.workers.values())
        return self.inline.busy + len(self.held) + inflight

    def _pump(self, timeout: int | None) -> None:
        """Take in what the workers sent: hellos, results (held for ``collect``), deaths."""
        for fd, _ in self.poller.poll(timeout):
            worker = self.workers[fd]
            try:
                data = _recv(fd)
            except (EOFError, OSError):
                if not worker.ready:  # it never started (so it holds no task): do without it
                    self._drop(worker)
                    continue
                raise worker.died() from None
            if not worker.ready:
                worker.ready = True
                continue
            task = worker.inflight.popleft()
            worker.sizes.popleft()
            answer: DirResult | Failure = pickle.loads(data)
            if isinstance(answer, Failure):
                raise WorkerError(
                    f"listing {task.path} failed in a worker process: {answer.error!r}"
                ) from _Remote(answer.error, answer.trace)
            self.held.append((task, answer))

    def _drop(self, worker: _Worker) -> None:
        self.poller.unregister(worker.results)
        del self.workers[worker.results]
        error = worker.died()
        worker.end(kill=True)
        worker.reap()  # and closes its pipes
        log.warning("%s; listing in this process", error)

    def has_room(self) -> bool:
        if self.inline.busy or self.held:
            return False  # those results first
        self._pump(0)
        return not self.held  # a worker takes the task, or this process lists it

    def submit(self, task: DirTask) -> None:
        data = pickle.dumps(task, _PROTOCOL)
        size = len(data) + _LENGTH.size
        free = [w for w in self.workers.values() if w.ready and w.takes(size)]
        if not free:
            self.inline.submit(task)
            return
        worker = min(free, key=lambda w: len(w.inflight))
        worker.inflight.append(task)
        worker.sizes.append(size)
        try:
            _send(worker.tasks, data)
        except OSError:  # its end of the pipe is closed: it died
            raise worker.died() from None

    def collect(self) -> list[tuple[DirTask, DirResult]]:
        """The results ready now, waiting for one if need be."""
        if self.inline.busy:
            return self.inline.collect()
        while not self.held:
            self._pump(None)
        self._pump(0)
        out, self.held = self.held, []
        return out

    def close(self, kill: bool = False) -> None:
        """End the workers: at once if ``kill`` or if they still hold tasks."""
        for worker in self.workers.values():
            worker.end(kill)
        for worker in self.workers.values():
            worker.reap()
        self.workers = {}


class _Remote(Exception):
    def __init__(self, error: BaseException, trace: str) -> None:
        super().__init__(f"{error!r} in the worker:\n{trace}")

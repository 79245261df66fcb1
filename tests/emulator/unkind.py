"""Switches of :class:`TransferEmulator` for what the real services are allowed to do and do:
lose the answer to a request they carried out, extend or expire a task's deadline, show a
retried error in ``nice_status``, pause a task, purge tasks and runs, refuse a long label, list
in no promised order, refuse one directory's listing. All are off until a test turns them on.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING

from ._common import LIST_ORDERS, Clock, Fault
from .tasks import globus_to_local

if TYPE_CHECKING:
    from .flows import FlowsService
    from .transfer import TransferService


class UnkindSwitches:
    """Mixed into TransferEmulator (which owns the state named below)."""

    clock: Clock
    _lock: threading.RLock
    _cond: threading.Condition
    _faults: deque[Fault]
    _transfer: TransferService
    _flows: FlowsService

    # ----------------------------------------------------------------- lost answers

    def lose_replies(
        self,
        n: int,
        path_prefix: str = "/flows-api/flows/",
        *,
        method: str | None = "POST",
        status: int | None = 502,
    ) -> None:
        """The next ``n`` matching requests are carried out (a run is started, a task is
        submitted, a directory is made), then their answer is lost: ``status`` (502, 504, ...)
        with a Globus error body, or the connection dropped when ``status`` is None. The SDK
        retries POSTs on these, so a second request arrives for a service that already acted.
        (An answer held past the client's timeout after acting: :meth:`delay_replies`.) The
        requests are listed in :attr:`lost`."""
        wanted = method.upper() if method else None
        with self._lock:
            self._faults.append(Fault(n, path_prefix, status, method=wanted, after=True))

    # ----------------------------------------------------------------- model time, deadlines

    def advance_clock(self, seconds: float) -> None:
        """Move the services' model time forward: task deadlines, retries and Flows runs see
        the later time at once (request and event times too)."""
        with self._cond:
            self.clock.offset += seconds
            self._transfer.tick(self.clock())
            self._cond.notify_all()

    @property
    def extend_deadlines(self) -> bool:
        """When on, deadlines behave as the Transfer docs say (task_behavior#deadlines): a
        transfer submitted without ``deadline`` has its deadline pushed to 72 h after its last
        completed batch of work while it progresses (to 24 h away while queued without errors),
        a paused one gets 90 days, an unpaused one 24 h; deletes and tasks given a deadline
        expire at it. Off: every task expires at its deadline (24 h when none was given)."""
        return self._transfer.extend_deadlines

    @extend_deadlines.setter
    def extend_deadlines(self, value: bool) -> None:
        with self._cond:
            self._transfer.extend_deadlines = value
            self._cond.notify_all()

    def record_progress(self, task_id: str, nbytes: int = 1) -> None:
        """A running task completes a batch of work now (model time) without finishing: its
        ``bytes_transferred`` grows, and with :attr:`extend_deadlines` its deadline moves."""
        with self._cond:
            task = self._transfer.tasks[task_id]
            task.bytes_transferred += nbytes
            task.last_progress = self.clock()
            self._transfer.tick(self.clock())
            self._cond.notify_all()

    # ----------------------------------------------------------------- errors, pauses

    def transient_error_next_task(
        self, code: str = "PERMISSION_DENIED", *, clears_after: float = 900.0
    ) -> None:
        """The next submitted task hits ``code`` when it first runs, an error the service
        retries: ACTIVE, ``nice_status`` ``code``, ``is_ok`` false, an error event; after
        ``clears_after`` seconds of model time (see :meth:`advance_clock`) it runs again and
        succeeds. The docs: a task's nice_status shows error information when "it also hit an
        error within the past 15 minutes" (task_behavior#queuing). Errors that never clear
        (NO_SPACE_LEFT, QUOTA_EXCEEDED, INVALID_PATH_NAME, NOT_A_DIRECTORY): stick_next_task."""
        with self._lock:
            self._transfer.pending_transients.append((code, clears_after))

    def pause_task(self, task_id: str, message: str | None = None) -> None:
        """An administrator's pause rule stops the task: ``is_paused`` true, no work done (it
        keeps its status), ``task_pause_info`` lists the rule."""
        with self._cond:
            self._transfer.pause(self._transfer.tasks[task_id], message, self.clock())
            self._cond.notify_all()

    def unpause_task(self, task_id: str) -> None:
        """The pause rule is lifted: the task goes on."""
        with self._cond:
            self._transfer.unpause(self._transfer.tasks[task_id], self.clock())
            self._cond.notify_all()

    # ----------------------------------------------------------------- purges

    def purge_task(self, task_id: str) -> None:
        """The service forgot the task (its history is kept for a limited time): its id
        answers 404 ClientError.NotFound and it leaves ``task_list``."""
        with self._cond:
            del self._transfer.tasks[task_id]
            self._cond.notify_all()

    def purge_flow_run(self, run_id: str) -> None:
        """The Flows service deleted the run (it does so 90 days after it ended): ``get_run``
        answers 404 and ``list_runs`` leaves it out."""
        with self._lock:
            del self._flows.runs[run_id]

    # ----------------------------------------------------------------- limits, order, listing

    @property
    def label_limit(self) -> int | None:
        """When set (the service's is 128), a transfer or delete whose ``label`` is longer is
        refused with 400 ClientError.BadRequest. None: any length is accepted."""
        return self._transfer.label_limit

    @label_limit.setter
    def label_limit(self, value: int | None) -> None:
        with self._lock:
            self._transfer.label_limit = value

    def set_list_order(self, order: str | None) -> None:
        """The order of Flows ``list_runs`` and of Transfer ``task_list`` (when no ``orderby``
        is asked for), which the services do not promise: "oldest" first (as the SDK's recorded
        list_runs), "newest" first, or "shuffled" (fixed across pages). None: as before."""
        if order is not None and order not in LIST_ORDERS:
            raise ValueError(f"order must be one of {LIST_ORDERS} or None")
        with self._lock:
            self._transfer.list_order = order
            self._flows.list_order = order

    @property
    def ls_limit_key(self) -> bool:
        """When on, ``operation_ls`` answers also carry ``limit`` and ``offset``, which the
        real answer does not (globus-cli's ls_results.yaml, recorded verbatim): only for code
        that still finds a page's end from ``limit`` while a test caps pages (ls_limit_cap)."""
        return self._transfer.ls_limit_key

    @ls_limit_key.setter
    def ls_limit_key(self, value: bool) -> None:
        with self._lock:
            self._transfer.ls_limit_key = value

    def refuse_listing(
        self,
        collection_id: str,
        gpath: str,
        *,
        status: int = 400,
        code: str = "ClientError.InvalidPath",
        refused: bool = True,
    ) -> None:
        """``operation_ls`` of this one directory answers ``status`` ``code`` (a name the
        service refuses), or lists again. The default code is the one the issue names; no
        published recording of it was found, so it is an assumption (pass another)."""
        with self._lock:
            key = (collection_id, globus_to_local(self._transfer.roots[collection_id], gpath))
            if refused:
                self._transfer.refused_paths[key] = (status, code)
            else:
                self._transfer.refused_paths.pop(key, None)

"""A local emulation of the Globus Transfer API v0.10, of the Globus Auth token endpoints and of
the Globus Flows API (runs: see flows.py, served under ``/flows-api/``).

Only the standard library: a :class:`http.server.ThreadingHTTPServer` on 127.0.0.1 (port
0) in a daemon thread, plus a worker thread that runs tasks by copying files between the
local directories that stand for collections. Point the SDK at it with :meth:`env`::

    with TransferEmulator({SRC: src_dir, DST: dst_dir}) as emu:
        monkeypatch.setenv(...)  # emu.env()
        app = globus_sdk.ClientApp(client_id=emu.DEFAULT_CLIENT_ID, ...)
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import traceback
import types
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self, cast

from ._common import (
    Clock,
    Fault,
    HTTPError,
    JSONDict,
    Reply,
    Request,
    new_request_id,
    transfer_error,
)
from .auth import (
    DEFAULT_TOKEN_LIFETIME,
    DEFAULT_USER_ID,
    TRANSFER_RS,
    TRANSFER_SCOPE,
    AuthService,
)
from .flows import EmulatedRun, FlowsService
from .tasks import EmulatedTask, execute
from .transfer import TransferService
from .unkind import UnkindSwitches

ERROR_CODES = {
    400: "ClientError.BadRequest",
    401: "AuthenticationFailed",
    403: "PermissionDenied",
    404: "ClientError.NotFound",
    409: "ClientError.Conflict",
    429: "ClientError.TooManyRequests",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, emulator: TransferEmulator) -> None:
        self.emulator = emulator
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def close_open_connections(self) -> None:
        """Shut keep-alive connections down so that their handler threads end."""
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GlobusEmulator/1.0"

    def setup(self) -> None:
        super().setup()
        # headers and body are separate writes: avoid Nagle + delayed-ACK stalls (~40 ms)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = cast(_Server, self.server)
        with server.connections_lock:
            server.open_connections.add(self.connection)

    def finish(self) -> None:
        server = cast(_Server, self.server)
        with server.connections_lock:
            server.open_connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urllib.parse.urlsplit(self.path)
        req = Request(
            method=self.command,
            path=urllib.parse.unquote(split.path),
            query=urllib.parse.parse_qs(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        emulator = cast(_Server, self.server).emulator
        reply, delayed = emulator._respond(req)
        if reply is None:  # injected dropped connection: no answer at all
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = reply.encode()
        # a held answer may find its client gone (killed while it waited): not an error
        with contextlib.suppress(OSError) if delayed else contextlib.nullcontext():
            self.send_response(reply.status)
            if reply.body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch


class TransferEmulator(UnkindSwitches):
    """Globus Transfer v0.10 + Globus Auth, emulated over local directories.

    :param collections: collection id -> local directory that is the collection's "/".
    :param clients: client_id -> client_secret accepted by the client-credentials grant
        (default: ``{DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}``).
    :param max_active: tasks of one owner (and of one type) running at once; more wait
        ACTIVE with nice_status "Queued", like the real service (3 there).
    :param task_delay: seconds a task holds its running slot before the worker runs it.
    """

    DEFAULT_CLIENT_ID = "9f7c3e2a-4b1d-4c8e-a6f5-1d2e3f4a5b6c"
    DEFAULT_CLIENT_SECRET = "emulator-client-secret"
    DEFAULT_USER_ID = DEFAULT_USER_ID
    TRANSFER_SCOPE = TRANSFER_SCOPE

    def __init__(
        self,
        collections: dict[str, Path],
        *,
        clients: dict[str, str] | None = None,
        max_active: int = 3,
        task_delay: float = 0.0,
        token_lifetime: int = DEFAULT_TOKEN_LIFETIME,
    ) -> None:
        if clients is None:
            clients = {self.DEFAULT_CLIENT_ID: self.DEFAULT_CLIENT_SECRET}
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._auth = AuthService(clients, token_lifetime=token_lifetime)
        #: model time of the Transfer and Flows services (see :meth:`advance_clock`)
        self.clock = Clock()
        self._transfer = TransferService(
            collections, max_active=max_active, task_delay=task_delay, clock=self.clock
        )
        self._flows = FlowsService(self.clock)
        self._faults: deque[Fault] = deque()
        self._release_generation = 0
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = False
        #: (method, path, status) of every request answered, in order
        self.requests: list[tuple[str, str, int]] = []
        #: (time.monotonic() on arrival, method, path, query) of every request, in order
        self.arrivals: list[tuple[float, str, str, dict[str, list[str]]]] = []
        #: (method, path) of every request whose connection was dropped on purpose
        self.dropped: list[tuple[str, str]] = []
        #: (method, path, status) of every request whose answer was held back on purpose
        self.delayed: list[tuple[str, str, int]] = []
        #: (method, path, status) of every request carried out whose answer was then lost
        self.lost: list[tuple[str, str, int]] = []
        #: tracebacks of unexpected exceptions in handlers or in the worker (should be empty)
        self.server_errors: list[str] = []

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the emulator is already started")
        self._stopping = False
        self._server = _Server(self)
        serve = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="globus-emulator-http",
            daemon=True,
        )
        worker = threading.Thread(target=self._work, name="globus-emulator-worker", daemon=True)
        self._threads = [serve, worker]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        server.shutdown()
        server.server_close()
        server.close_open_connections()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []
        self._server = None

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/`` (the Transfer base URL; Auth is under ``auth/``)."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://127.0.0.1:{self._server.server_port}/"

    def env(self) -> dict[str, str]:
        """Environment variables that point globus-sdk (and globus-cli) at the emulator."""
        return {
            "GLOBUS_SDK_SERVICE_URL_TRANSFER": self.url,
            "GLOBUS_SDK_SERVICE_URL_AUTH": self.url + "auth/",
            "GLOBUS_SDK_SERVICE_URL_FLOWS": self.url + "flows-api/",
        }

    # ----------------------------------------------------------------- state

    @property
    def tasks(self) -> dict[str, EmulatedTask]:
        """task_id -> task, in submission order (live objects: read, do not mutate)."""
        return self._transfer.tasks

    @property
    def submissions(self) -> list[str]:
        """Every submission id that created a task, in order (duplicates add nothing)."""
        return self._transfer.submissions

    @property
    def max_concurrent_active(self) -> int:
        """Highest number of tasks of one owner (and type) that held a running slot."""
        return self._transfer.max_concurrent_active

    @max_concurrent_active.setter
    def max_concurrent_active(self, value: int) -> None:
        with self._lock:
            self._transfer.max_concurrent_active = value

    @property
    def collection_docs(self) -> dict[str, JSONDict]:
        """collection id -> the endpoint document served (tests may edit fields)."""
        return self._transfer.collection_docs

    @property
    def retry_interval(self) -> float:
        """Seconds a task in error waits before it is retried (default 0.5)."""
        return self._transfer.retry_interval

    @retry_interval.setter
    def retry_interval(self, value: float) -> None:
        with self._lock:
            self._transfer.retry_interval = value

    @property
    def page_limit_cap(self) -> int:
        """Largest ``limit`` honoured by offset-paged lists (task_list, event_list)."""
        return self._transfer.page_limit_cap

    @page_limit_cap.setter
    def page_limit_cap(self, value: int) -> None:
        with self._lock:
            self._transfer.page_limit_cap = value

    @property
    def ls_limit_cap(self) -> int:
        """Largest ``limit`` an operation_ls page honours (the service's is 100,000)."""
        return self._transfer.ls_limit_cap

    @ls_limit_cap.setter
    def ls_limit_cap(self, value: int) -> None:
        with self._lock:
            self._transfer.ls_limit_cap = value

    @property
    def marker_page_size(self) -> int:
        """Page size of marker-paged lists (successful_transfers, skipped_errors)."""
        return self._transfer.marker_page_size

    @marker_page_size.setter
    def marker_page_size(self, value: int) -> None:
        with self._lock:
            self._transfer.marker_page_size = value

    def task_document(self, task_id: str) -> JSONDict:
        """The task document as GET /task/<id> would answer it."""
        with self._lock:
            return self._transfer.tasks[task_id].document(self._transfer.collection_docs)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no task is ACTIVE, except stuck ones (injected, or backing off
        after an error such as FILE_NOT_FOUND). Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._transfer.is_idle():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    busy = [
                        f"{t.task_id} ({t.nice_status})"
                        for t in self._transfer.tasks.values()
                        if t.status == "ACTIVE" and not t.stuck
                    ]
                    raise TimeoutError(f"emulator tasks still active: {', '.join(busy)}")
                self._cond.wait(min(remaining, 0.05))

    # ----------------------------------------------------------------- tokens

    def issue_token(
        self,
        scope: str = TRANSFER_SCOPE,
        identity: str = DEFAULT_USER_ID,
        *,
        username: str | None = None,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        """Mint a user access + refresh token pair, as if ``identity`` had logged in.

        Returns a token response (``access_token``, ``refresh_token``, ``expires_in``,
        ``expires_at_seconds``, ``resource_server``, ``scope``, ``token_type``,
        ``other_tokens`` for other resource servers) plus ``identity_id``. ``identity``
        is an identity id, or a username (containing "@") whose id is derived. Dependent
        scopes (``transfer:all[*https://auth.globus.org/scopes/X/data_access]``) count
        as consented. With ``client_id``, only that client may refresh the tokens.
        """
        with self._lock:
            return self._auth.issue_user_tokens(
                scope, identity, username=username, client_id=client_id
            )

    def authorize(self, url: str, identity: str = DEFAULT_USER_ID) -> str:
        """Log in through the authorize URL a native app printed, as ``identity``, consenting
        to what it asks; answers the authorization code a person would paste back."""
        with self._lock:
            return self._auth.authorize(url, identity)

    def expire_tokens(self) -> None:
        """Invalidate every token issued so far (access and refresh)."""
        with self._lock:
            self._auth.expire_all()

    # ----------------------------------------------------------------- faults

    def fail_requests(
        self,
        n: int,
        status: int = 503,
        path_prefix: str = "/v0.10/",
        retry_after: int | None = None,
        *,
        code: str | None = None,
        skip: int = 0,
    ) -> None:
        """The next ``n`` requests whose path starts with ``path_prefix`` answer ``status``
        with a Globus error body (and ``Retry-After`` when ``retry_after`` is given); with
        ``skip``, only after that many matching requests were answered normally."""
        with self._lock:
            self._faults.append(Fault(n, path_prefix, status, retry_after, code, skip=skip))

    def drop_connections(self, n: int, path_prefix: str = "/v0.10/") -> None:
        """The next ``n`` matching requests get their connection closed, unanswered."""
        with self._lock:
            self._faults.append(Fault(n, path_prefix, None))

    def delay_replies(
        self,
        n: int,
        seconds: float,
        path_prefix: str = "/v0.10/transfer",
        method: str | None = "POST",
    ) -> None:
        """The next ``n`` matching requests are carried out at once (a submission creates its
        task), but their answer is sent only after ``seconds``, or sooner on
        :meth:`release_replies` or :meth:`stop`. A client killed meanwhile never learns the
        answer: the window between the service acting and the caller recording it."""
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        wanted = method.upper() if method else None
        with self._lock:
            self._faults.append(Fault(n, path_prefix, None, delay=seconds, method=wanted))

    def release_replies(self) -> None:
        """Send every answer held back by :meth:`delay_replies` now."""
        with self._cond:
            self._release_generation += 1
            self._cond.notify_all()

    def clear_faults(self) -> None:
        """Forget injected request faults not used yet (not task faults)."""
        with self._lock:
            self._faults.clear()

    @property
    def tasks_held(self) -> bool:
        """True while :meth:`hold_tasks` keeps accepted tasks from running."""
        return self._transfer.tasks_held

    def hold_tasks(self, held: bool = True) -> None:
        """While held, tasks are accepted (and get their running slots) but none starts its
        file work; ``hold_tasks(False)`` lets them run. ``wait_idle`` times out while held."""
        with self._cond:
            self._transfer.tasks_held = held
            self._cond.notify_all()

    def fail_next_task(
        self, reason: str = "PERMISSION_DENIED", description: str | None = None
    ) -> None:
        """The next submitted task ends FAILED with fatal_error {code: reason, ...}."""
        with self._lock:
            self._transfer.pending_failures.append(
                (reason, description or reason.replace("_", " ").lower())
            )

    def deactivate_task(self, task_id: str, nice_status: str | None = None) -> None:
        """The task turns INACTIVE, as when a collection's credentials expire: it does no work
        until :meth:`reactivate_task`. For a task not yet running (see :meth:`hold_tasks`)."""
        with self._cond:
            task = self._transfer.tasks[task_id]
            task.status, task.nice_status = "INACTIVE", nice_status
            self._cond.notify_all()

    def reactivate_task(self, task_id: str) -> None:
        """An INACTIVE task is ACTIVE again (its owner renewed the credentials)."""
        with self._cond:
            task = self._transfer.tasks[task_id]
            task.status, task.nice_status = "ACTIVE", "Queued"
            self._cond.notify_all()

    def stick_next_task(self, nice_status: str = "PERMISSION_DENIED") -> None:
        """The next submitted task stays ACTIVE with ``nice_status`` and never runs
        (until canceled, or failed EXPIRED when its deadline passes)."""
        with self._lock:
            self._transfer.pending_sticks.append(nice_status)

    def set_gcp(self, collection_id: str, *, connected: bool = True, paused: bool = False) -> None:
        """Make a collection a Globus Connect Personal one, connected or not, paused or not:
        its document says so (``is_globus_connect``, ``gcp_connected``, ``gcp_paused``), and
        while it is not connected (or paused) every task touching it waits, ACTIVE, with
        ``nice_status`` GC_NOT_CONNECTED (GC_PAUSED), and runs once it is back."""
        with self._cond:
            doc = self._transfer.collection_docs[collection_id]
            doc.update(
                entity_type="GCP_mapped_collection",
                is_globus_connect=True,
                gcp_connected=connected,
                gcp_paused=paused,
                gcs_version=None,
            )
            for task in self._transfer.tasks.values():  # at once: wait_idle sees the change
                if task.status == "ACTIVE" and not task.executing:
                    self._transfer.gcp_gate(task)
            self._cond.notify_all()

    def google_drive(self, collection_id: str) -> Path:
        """Make a collection behave like a Google Drive one (tests/emulator/listing.py): a
        virtual root of ``/My Drive`` and ``/Shared With Me``, folder times that do not change,
        no links, duplicate names (``NAME~dupN``). Returns the local "My Drive" directory."""
        from .listing import DriveState

        with self._lock:
            root = self._transfer.roots[collection_id]
            self._transfer.drives[collection_id] = DriveState(root)
            self._transfer.collection_docs[collection_id].update(
                display_name="Emulated Google Drive", entity_type="GCSv5_guest_collection"
            )
        return root / "My Drive"

    def deny_listing(self, collection_id: str, gpath: str, denied: bool = True) -> None:
        """``operation_ls`` of this directory answers 403 PermissionDenied (as for a folder the
        collection's storage does not let the user read), or lists again."""
        from .tasks import globus_to_local

        with self._lock:
            key = (collection_id, globus_to_local(self._transfer.roots[collection_id], gpath))
            if denied:
                self._transfer.denied.add(key)
            else:
                self._transfer.denied.discard(key)

    def require_consent(self, collection_id: str) -> None:
        """Operations on this collection (submit, ls, stat, mkdir; not endpoint GET) need
        its data_access consent: without it they answer 403 ConsentRequired."""
        with self._lock:
            self._transfer.consent_required.add(collection_id)

    # ----------------------------------------------------------------- Flows

    @property
    def flow_runs(self) -> dict[str, EmulatedRun]:
        """run_id -> run of the emulated Flows service, in start order (read, do not mutate)."""
        return self._flows.runs

    def next_flow_runs(self, *outcomes: str) -> None:
        """The next runs started end so, in order: SUCCEEDED (the default once these are used),
        FAILED, INACTIVE (waits for a consent until :meth:`resume_flow_run`), ACTIVE (never
        ends)."""
        with self._lock:
            self._flows.outcomes.extend(outcomes)

    def set_flow_run_delay(self, seconds: float) -> None:
        """Runs stay ACTIVE this long before they reach their outcome (default 0)."""
        with self._lock:
            self._flows.run_delay = seconds

    def require_flow_consent(self, flow_id: str, collection_id: str) -> None:
        """Starting a run of this flow needs a data_access consent for the collection under
        the flow's scope: without it, 403 ConsentRequired."""
        with self._lock:
            self._flows.consent_required[flow_id] = collection_id

    def resume_flow_run(self, run_id: str) -> None:
        """An INACTIVE run goes on (someone granted what it waited for), and then succeeds."""
        with self._lock:
            self._flows.resume(run_id)

    # ----------------------------------------------------------------- internals

    def _take_fault(self, path: str, method: str = "GET") -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _respond(self, req: Request) -> tuple[Reply | None, bool]:
        """The answer (None: drop the connection) and whether it was held back."""
        with self._cond:
            self.arrivals.append((time.monotonic(), req.method, req.path, dict(req.query)))
            fault = self._take_fault(req.path, req.method)
            delay = fault.delay if fault is not None else 0.0
            if delay > 0:
                fault = None  # carried out normally, answered late
            if fault is not None and fault.after:
                return self._act_then_lose(req, fault), False
            if fault is not None and fault.status is None:
                self.dropped.append((req.method, req.path))
                return None, False
            if fault is not None and fault.status is not None:
                reply = self._fault_reply(req, fault, fault.status)
            else:
                reply = self._carry_out(req)
            self.requests.append((req.method, req.path, reply.status))
            self._cond.notify_all()
            if delay <= 0:
                return reply, False
            self.delayed.append((req.method, req.path, reply.status))
            generation = self._release_generation
            self._cond.wait_for(
                lambda: self._stopping or self._release_generation != generation, timeout=delay
            )
            return reply, True

    def _carry_out(self, req: Request) -> Reply:
        try:
            return self._route(req)
        except HTTPError as err:
            return err.reply
        except Exception:
            self.server_errors.append(traceback.format_exc())
            return transfer_error(
                500, "InternalError", "Emulator error (see server_errors)", req.path
            ).reply

    def _act_then_lose(self, req: Request, fault: Fault) -> Reply | None:
        """The service acts on the request, then its answer is lost on the way back."""
        acted = self._carry_out(req)
        self.lost.append((req.method, req.path, acted.status))
        self._cond.notify_all()
        if fault.status is None:
            self.dropped.append((req.method, req.path))
            return None
        reply = self._fault_reply(req, fault, fault.status)
        self.requests.append((req.method, req.path, reply.status))
        return reply

    @staticmethod
    def _fault_reply(req: Request, fault: Fault, status: int) -> Reply:
        code = fault.code or ERROR_CODES.get(status, f"HTTPError{status}")
        reply = transfer_error(
            status, code, f"Injected failure: HTTP {status}", req.path.removeprefix("/v0.10")
        ).reply
        if fault.retry_after is not None:
            reply.headers["Retry-After"] = str(fault.retry_after)
        return reply

    def _route(self, req: Request) -> Reply:
        if req.path.startswith("/auth/"):
            return self._auth.handle(req, req.path[len("/auth") :])
        if req.path.startswith("/flows-api/"):
            header = req.header("Authorization") or ""
            token = None
            if header.lower().startswith("bearer "):
                token = self._auth.lookup_access(header[7:].strip())
            return self._flows.handle(req, req.path[len("/flows-api") :], token)
        if req.path.startswith("/v0.10/"):
            path = req.path[len("/v0.10") :]
            header = req.header("Authorization") or ""
            if not header.lower().startswith("bearer "):
                raise transfer_error(
                    401, "AuthenticationFailed", "No Authorization header provided", path
                )
            token = self._auth.lookup_access(header[7:].strip())
            if token is None:
                raise transfer_error(401, "AuthenticationFailed", "Token is not active", path)
            if token.resource_server != TRANSFER_RS:
                raise transfer_error(
                    401,
                    "AuthenticationFailed",
                    f"Token is for {token.resource_server}, not {TRANSFER_RS}",
                    path,
                )
            return self._transfer.handle(req, path, token)
        raise HTTPError(
            404,
            {
                "code": "ClientError.NotFound",
                "message": f"Nothing is emulated at {req.path}",
                "request_id": new_request_id(),
                "resource": req.path,
            },
        )

    def _work(self) -> None:
        roots = self._transfer.roots
        while True:
            with self._cond:
                if self._stopping:
                    return
                try:
                    task = self._transfer.schedule(self.clock())
                except Exception:
                    self.server_errors.append(traceback.format_exc())
                    task = None
                if task is None:
                    self._cond.notify_all()
                    self._cond.wait(0.02)
                    continue
            try:
                outcome = execute(task, roots)
            except Exception:
                self.server_errors.append(traceback.format_exc())
                with self._cond:
                    task.executing = False
                    self._transfer.fail(task, "UNKNOWN", "emulator error", now=self.clock())
                    self._cond.notify_all()
                continue
            with self._cond:
                self._transfer.apply(task, outcome, self.clock())
                self._cond.notify_all()

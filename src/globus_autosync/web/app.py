"""The status page's server: ``/`` the page, ``/jobs/<name>`` a job's page, ``/metrics``,
``/api/v1/...`` the JSON of ``status --json`` and ``tasks --json``, ``/healthz``, ``/static/``.

GET and HEAD only (405 otherwise): nothing here changes anything. Each request opens the state
database read-only (a WAL reader: it never blocks a cycle's writer) and closes it again. The
handling (``App.handle``) is separate from the HTTP server so that bench/web.py times it alone.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jinja2
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from globus_autosync.config import Config, Job
from globus_autosync.errors import UsageError
from globus_autosync.monitoring import health, metrics
from globus_autosync.monitoring import status as report
from globus_autosync.store import Store
from globus_autosync.web import views

log = logging.getLogger(__name__)

DEFAULT_ADDRESS, DEFAULT_PORT = "127.0.0.1", 8470
REFRESH_SECONDS = 5  # how often the page's script fetches the page again

# nothing from another origin; no inline script; the SVG is markup, not a loaded image
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
HTML, TEXT, JSON = "text/html; charset=utf-8", "text/plain; charset=utf-8", "application/json"


class Response(NamedTuple):
    status: int
    content_type: str
    body: bytes
    cache: str = "no-cache"  # the API and pages: always asked afresh
    location: str | None = None  # a redirect's


def parse_address(text: str) -> tuple[str, int]:
    """ADDRESS:PORT, :PORT or PORT (the address then 127.0.0.1); [::1]:PORT for IPv6."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or DEFAULT_ADDRESS
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--http {text!r}: write ADDRESS:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
    return host, int(port)


class App:
    """The routes, as a function of a request's method and target."""

    def __init__(self, config: Callable[[], Config], state_dir: Path) -> None:
        self.config, self.state_dir = config, state_dir
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("globus_autosync.web", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            bytes=views.human_bytes,
            age=health.age,
            count=views._count,
            quote=lambda s: quote(str(s), safe=""),
        )
        self.env.globals.update(refresh=REFRESH_SECONDS)
        self.static = {
            f.name: f.read_bytes()
            for f in resources.files("globus_autosync.web").joinpath("static").iterdir()
            if f.is_file()
        }
        self.metrics = metrics.registry(config, state_dir)

    def handle(self, target: str) -> Response:
        """A GET (HEAD: the same, without its body)."""
        url = urlsplit(target)
        path, query = unquote(url.path), parse_qs(url.query)
        if path.startswith("/static/"):
            return self._static(path[len("/static/") :])
        if path == "/metrics":
            return Response(200, CONTENT_TYPE_LATEST, generate_latest(self.metrics))
        if path != "/" and path.endswith("/"):  # one address per page: /jobs/x/ is /jobs/x
            there = url.path.rstrip("/") + (f"?{url.query}" if url.query else "")
            return Response(301, TEXT, f"moved to {there}\n".encode(), location=there)
        parts = path.strip("/").split("/")
        routes: dict[str, Callable[[], Response]] = {
            "": lambda: self._page(query),
            "healthz": self._healthz,
            "api/v1/status": self._status,
        }
        if path.strip("/") in routes:
            return routes[path.strip("/")]()
        if len(parts) == 2 and parts[0] == "jobs":
            return self._with_job(parts[1], lambda job: self._job_page(job, query))
        if (
            len(parts) == 5
            and parts[:3] == ["api", "v1", "jobs"]
            and parts[4] in ("batches", "actions")
        ):
            return self._with_job(parts[3], lambda job: self._tasks(job, parts[4], query))
        return _error(404, f"nothing at {path}")

    # -- routes ---------------------------------------------------------------------------
    def _with_job(self, name: str, then: Callable[[Job], Response]) -> Response:
        job = next((j for j in self.config().jobs if j.name == name), None)
        return then(job) if job is not None else _error(404, f"no job named {name!r}")

    def _store(self) -> Store | None:
        return Store.open_readonly(self.state_dir)

    def _read(self, what: Callable[[Store | None], Any]) -> Any:
        store = self._store()
        try:
            return what(store)
        finally:
            if store is not None:
                store.close()

    def _status(self) -> Response:
        rows = self._read(lambda s: views.status_rows(s, self.config()))
        return _json({"jobs": rows})

    def _tasks(self, job: Job, kind: str, query: dict[str, list[str]]) -> Response:
        limit = query.get("limit", ["20"])[-1]
        if not limit.isdigit() or int(limit) < 1:
            return _error(400, f"limit={limit!r}: a whole number of at least 1")
        if kind == "batches":
            rows = self._read(lambda s: report.job_tasks(s, job, int(limit)))
            return _json({"tasks": rows})
        rows = self._read(lambda s: report.job_actions(s, job, int(limit)))
        return _json({"actions": rows})

    def _healthz(self) -> Response:
        rows = self._read(lambda s: views.status_rows(s, self.config()))
        ok = all(r["health"]["state"] == health.OK for r in rows)
        body = "".join(f"{line}\n" for line in views.check_lines(rows))
        return Response(200 if ok else 503, TEXT, body.encode())

    def _page(self, query: dict[str, list[str]]) -> Response:
        cfg = self.config()
        cards = self._read(lambda s: views.cards(s, cfg))
        name = "_cards.html" if "fragment" in query else "index.html"
        html = self.env.get_template(name).render(
            cards=cards, now=_now(), root="", title="globus-autosync"
        )
        return Response(200, HTML, html.encode())

    def _job_page(self, job: Job, query: dict[str, list[str]]) -> Response:
        page = self._read(lambda s: views.job_page(s, job))
        name = "_job.html" if "fragment" in query else "job.html"
        html = self.env.get_template(name).render(c=page, now=_now(), root="../", title=job.name)
        return Response(200, HTML, html.encode())

    def _static(self, name: str) -> Response:
        body = self.static.get(name)
        if body is None:
            return _error(404, f"no static file {name!r}")
        kind = _TYPES.get(Path(name).suffix, "application/octet-stream")
        return Response(200, kind, body, cache="max-age=300")


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())


def _json(doc: dict[str, Any]) -> Response:
    return Response(200, JSON, json.dumps(doc, indent=2).encode())


def _error(status: int, text: str) -> Response:
    return Response(status, TEXT, f"{text}\n".encode())


class Handler(BaseHTTPRequestHandler):
    """GET and HEAD; any other method: 405."""

    app: App  # set on the subclass that serve() makes

    def version_string(self) -> str:
        return "globus-autosync"

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _refuse(self) -> None:
        self._send(
            _error(405, "read-only: GET and HEAD only"), head=False, extra={"Allow": "GET, HEAD"}
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    def _answer(self, head: bool) -> None:
        try:
            response = self.app.handle(self.path)
        except Exception as err:  # one request's failure (a damaged store) is its answer only
            log.warning("%s %s: %s", self.command, self.path, err)
            response = _error(500, f"{type(err).__name__}: {err}")
        self._send(response, head)

    def _send(self, r: Response, head: bool, extra: dict[str, str] | None = None) -> None:
        self.send_response(r.status)
        headers = {
            "Content-Type": r.content_type,
            "Content-Length": str(len(r.body)),
            "Cache-Control": r.cache,
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            **({"Location": r.location} if r.location else {}),
            **(extra or {}),
        }
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(r.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: " + format, self.client_address[0], *args)


class Server(ThreadingHTTPServer):
    daemon_threads = True


class Server6(Server):
    address_family = socket.AF_INET6


def make_server(address: str, port: int, app: App) -> Server:
    """Bind ``address:port``; a port in use (or an address not here) is one line, exit 2."""
    handler = type("BoundHandler", (Handler,), {"app": app})
    server_class = Server6 if ":" in address else Server
    try:
        return server_class((address, port), handler)
    except OSError as err:
        raise UsageError(
            f"cannot serve http on {address}:{port}: {err.strerror}; choose another "
            "(--http ADDRESS:PORT)"
        ) from None


def start(address: str, port: int, config: Callable[[], Config], state_dir: Path) -> Server:
    """Serve from a daemon thread (``watch --http``); the server is returned bound."""
    server = make_server(address, port, App(config, state_dir))
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server

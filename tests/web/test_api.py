"""The JSON API, /healthz, /metrics and the headers, from a `serve` beside `run` (no browser)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable

import pytest

from ..functional.helpers import CliEnv, job_toml
from .helpers import Http


def test_serve_beside_run_answers_what_status_and_tasks_say(
    env: CliEnv, server: Callable[..., Http]
) -> None:
    http = server("serve")  # before any database: every job stopped, never run
    status, _, body = http.get("/healthz")
    assert (status, body) == (
        503,
        b"detector: STOPPED: it has never run; " + body.split(b"; ", 1)[1],
    )
    for i in range(5):
        env.write(f"d{i % 2}/f{i}.dat", f"file {i}")
    # runs beside the server: it never blocks them (read-only, a WAL reader per request)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(40):
                assert http.get("/api/v1/status")[0] == 200
                assert http.get("/")[0] == 200
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(3):
        env.run()
        env.write("late.dat", "x" * len(env.log_lines()))
    thread.join()
    assert not errors
    env.run()
    assert http.json("/api/v1/status") == json.loads(env.cli("status", "--json").stdout)
    tasks = json.loads(env.cli("tasks", "--json", "--limit", "2").stdout)
    assert http.json("/api/v1/jobs/detector/batches?limit=2") == {"tasks": tasks["tasks"]}
    assert http.json("/api/v1/jobs/detector/actions?limit=2") == {"actions": tasks["actions"]}
    everything = json.loads(env.cli("tasks", "--json").stdout)
    assert http.json("/api/v1/jobs/detector/batches") == {"tasks": everything["tasks"]}
    assert http.get("/api/v1/jobs/nobody/batches")[0] == 404
    assert http.get("/api/v1/jobs/detector/batches?limit=0")[0] == 400
    assert http.get("/nothing/here")[0] == 404
    assert http.get("/static/../app.py")[0] == 404
    metrics = http.get("/metrics")[2].decode()
    assert 'globus_autosync_files{autosync_job="detector",state="done"} 6.0' in metrics


def test_healthz_is_200_when_every_job_is_ok_and_503_otherwise(
    env: CliEnv, server: Callable[..., Http]
) -> None:
    env.write("a.dat", "a")
    env.run()
    http = server("serve")
    status, _, body = http.get("/healthz")
    assert status == 200
    assert body.decode() == env.cli("status", "--check").stdout
    # a second job whose source is missing: failing after alert_after cycles
    env.configure(env.job(), job_toml("broken", source="missing", destination="dst",
                                      alert_after=1))  # fmt: skip
    env.run(code=None)
    http = server("serve")  # serve reads the configuration when it starts
    status, _, body = http.get("/healthz")
    check = env.cli("status", "--check", code=2).stdout
    assert status == 503
    assert body.decode() == check
    assert "broken: FAILING" in check


def test_read_only_headers_and_no_secret_in_any_answer(
    env: CliEnv, server: Callable[..., Http]
) -> None:
    smtp, secret = "smtp-Passw0rd-xyzzy", "client-Secr3t-plugh"
    env.configure(
        env.job()
        + '[alerts]\nemail = ["ops@example.org"]\nsmtp_host = "localhost"\n'
        + 'smtp_user = "autosync"\n'
    )
    env.write("a.dat", "a")
    env.run()
    environ = env.environ()
    environ.update(GLOBUS_AUTOSYNC_SMTP_PASSWORD=smtp, GLOBUS_AUTOSYNC_CLIENT_SECRET=secret)
    http = server("serve", environ=environ)
    paths = ["/", "/?fragment=1", "/jobs/detector", "/jobs/detector?fragment=1",
             "/api/v1/status", "/api/v1/jobs/detector/batches", "/api/v1/jobs/detector/actions",
             "/healthz", "/metrics", "/static/style.css", "/static/refresh.js",
             "/nothing"]  # fmt: skip
    for path in paths:
        status, headers, body = http.get(path)
        for word in (smtp, secret):
            assert word.encode() not in body, path
            assert all(word not in v for v in headers.values()), path
        assert headers["X-Content-Type-Options"] == "nosniff"
        csp = headers["Content-Security-Policy"]
        assert csp.startswith("default-src 'self'") and "http" not in csp
        if path.startswith(("/api", "/healthz", "/?", "/jobs")):
            assert headers["Cache-Control"] == "no-cache"
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _ = http.get("/api/v1/status", method=method)
        assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, body = http.get("/api/v1/status", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_a_port_in_use_is_one_line_and_exit_2(env: CliEnv, server: Callable[..., Http]) -> None:
    http = server("serve")
    address = http.base.removeprefix("http://")
    res = env.cli("serve", "--http", address, code=2)
    assert res.stderr.count("\n") == 1 and "Address already in use" in res.stderr
    res = env.cli("watch", "--http", address, code=2)
    assert "cannot serve http" in res.stderr and "Traceback" not in res.stderr
    res = env.cli("serve", "--http", "localhost:http", code=2)
    assert "ADDRESS:PORT" in res.stderr


@pytest.mark.parametrize("health", ["ok", "lagging", "waiting", "failing", "stopped"])
def test_healthz_code_for_each_health(
    env: CliEnv, server: Callable[..., Http], health: str
) -> None:
    """Each health, made in the store as cycles would leave it: 200 only for ok; the body is
    what `status --check` says."""
    env.configure(env.job(alert_after=1))
    env.write("a.dat", "a")
    env.run()
    now = time.time()
    with env.db() as db:
        if health == "lagging":  # a settled file queued two hours ago (alert_lag: 1 h)
            db.execute(
                "INSERT INTO files (dir, name, job, size, mtime_ns, state, since, queued_at) "
                "SELECT id, 'late.dat', job, 1, 0, 'queued', ?, ? FROM dirs LIMIT 1",
                (now - 7200, now - 7200),
            )
        elif health in ("waiting", "failing"):  # the last cycle stopped on a login, or failed
            result = "waiting" if health == "waiting" else "error"
            db.execute(
                "INSERT INTO runs (job, started, finished, full, result, summary) "
                "VALUES (1, ?, ?, 0, ?, 'run globus-autosync login')",
                (now, now, result),
            )
        elif health == "stopped":  # no cycle ran to its end for two hours
            db.execute("UPDATE runs SET started = started - 7200, finished = finished - 7200")
        db.commit()
    http = server("serve")
    status, _, body = http.get("/healthz")
    check = env.cli("status", "--check", code=None).stdout
    assert f"detector: {health.upper()}" in check
    assert (status, body.decode()) == (200 if health == "ok" else 503, check)
    assert http.json("/api/v1/status")["jobs"][0]["health"]["state"] == health


def test_a_trailing_slash_is_redirected_to_the_one_address_of_the_page(
    env: CliEnv, server: Callable[..., Http]
) -> None:
    env.write("a.dat", "a")
    env.run()
    page = server("serve")
    port = int(page.base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/jobs/detector/?fragment=1")
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 301
        assert answer.getheader("Location") == "/jobs/detector?fragment=1"
    finally:
        conn.close()
    status, _, body = page.get("/jobs/detector/")  # a browser follows it to the page
    assert status == 200 and b"detector" in body


def test_a_jobs_page_lists_cleanups_latest_deletions_and_what_cannot_be_sent(
    env: CliEnv, server: Callable[..., Http]
) -> None:
    env.configure(job_toml(delete_after="0s"))
    env.write("run1/a.tif", b"a" * 10)
    env.write("run1/b.tif", b"b" * 20)
    env.write("two\nlines.tif", b"n")  # a local destination takes any name
    (env.src / "link.tif").symlink_to("run1/a.tif")  # passed over: symlinks = "skip"
    env.run(code=1)
    env.run(code=None)  # the sources are deleted now, their copies confirmed
    assert not (env.src / "run1" / "a.tif").exists()
    page = server("serve")
    status, _, body = page.get("/jobs/detector")
    text = body.decode()
    assert status == 200
    assert 'class="deletions"' in text
    for name in ("run1/a.tif", "run1/b.tif", "two\\nlines.tif"):  # the name printable
        assert f"{env.src}/{name}" in text and f"{env.dst}/{name}" in text
    assert "link.tif" in text and "symbolic link (symlinks = skip)" in text
    assert "bytes confirmed per hour, last 24 h" in text and "31 B" in text  # a + b + n

"""Alerts through the CLI, to a local HTTP receiver and a local SMTP server started by the test:
once per condition and once on recovery across separate `run` processes, an unreachable
webhook retried without harm to the sync, no password in any file or log, `alert-test`."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .helpers import LONG_AGO, CliEnv, free_port, job_toml, wait_for

PASSWORD = "pw-Zq8v1-never-in-a-file"


@dataclass
class Receiver:
    """An incoming-webhook stand-in: records every JSON body posted to it."""

    port: int
    bodies: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T000/B000/secret-token"

    def start(self) -> None:
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def texts(self) -> list[str]:
        return [str(b["text"]) for b in self.bodies]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port())
    r.start()
    yield r
    r.stop()


def alerts_table(**keys: object) -> str:
    lines = ["[alerts]"] + [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def failing_job(env: CliEnv, alerts: str) -> None:
    """alert_after = 1: one file that fails is enough to make the job failing."""
    env.configure(alerts, job_toml(alert_after=1))
    env.write("sub/f.dat", "x", mtime=LONG_AGO)
    env.write("g.dat", "g", mtime=LONG_AGO)
    (env.dst / "sub").write_text("a file where a directory must go")


def fix(env: CliEnv) -> None:
    """The cause is fixed, and the file's retry falls due (its backoff has passed)."""
    (env.dst / "sub").unlink()
    with env.db() as db:
        db.execute("UPDATE files SET next_try = 0")
        db.commit()


def test_a_message_when_health_leaves_ok_and_one_when_it_returns(
    env: CliEnv, receiver: Receiver
) -> None:
    failing_job(env, alerts_table(webhook=receiver.url))
    env.run(code=1)
    [text] = receiver.texts()
    host = socket.gethostname()
    assert text.startswith(f"globus-autosync on {host}: job detector is failing: 1 file failed")
    assert "What to do: fix the cause" in text and "secret-token" not in text
    env.run(code=None)  # more cron runs, the same condition (the file waits to be retried)
    env.run(code=None)
    assert len(receiver.bodies) == 1
    fix(env)
    env.run()
    assert receiver.texts()[1] == (
        f"globus-autosync on {host}: job detector is ok again (it was failing)."
    )
    env.run()
    assert len(receiver.bodies) == 2
    log = "\n".join(env.log_lines())
    assert "alert sent by webhook to 127.0.0.1:" in log and "secret-token" not in log


def test_the_same_condition_is_repeated_after_repeat_every(env: CliEnv, receiver: Receiver) -> None:
    failing_job(env, alerts_table(webhook=receiver.url, repeat_every="1h"))
    env.run(code=1)
    with env.db() as db:  # an hour and a bit later
        db.execute("UPDATE alerts SET announced_at = announced_at - 3700")
        db.commit()
    env.run(code=None)
    assert len(receiver.bodies) == 2
    assert "job detector is still failing: " in receiver.texts()[1]
    env.run(code=None)
    assert len(receiver.bodies) == 2


def test_an_unreachable_webhook_is_logged_and_retried_and_the_sync_goes_on(
    env: CliEnv,
) -> None:
    down = Receiver(free_port())  # nothing listens there yet
    failing_job(env, alerts_table(webhook=down.url))
    res = env.run(code=1)  # the exit code of the sync: a file failed, not the alert
    assert (env.dst / "g.dat").read_text() == "g"  # the files still arrive
    told = [x for x in res.stderr.splitlines() if "alert not delivered" in x]
    assert len(told) == 1 and "cannot reach the webhook" in told[0] and "tried again in" in told[0]
    assert "secret-token" not in res.stderr
    env.write("h.dat", "h", mtime=LONG_AGO)
    res = env.run(code=None)  # before the retry is due: not tried again, the sync goes on
    assert (env.dst / "h.dat").read_text() == "h"
    assert "alert not delivered" not in res.stderr
    down.start()
    try:
        with env.db() as db:  # the retry falls due
            db.execute("UPDATE alerts SET next_try = 0")
            db.commit()
        env.run(code=None)
        [text] = down.texts()
        assert "job detector is failing" in text
        env.run(code=None)
        assert len(down.bodies) == 1  # delivered once: not again
    finally:
        down.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[Any], list[tuple[str, str]]]]:
    aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
    from aiosmtpd.smtp import AuthResult, LoginPassword

    messages: list[Any] = []
    logins: list[tuple[str, str]] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        if isinstance(data, LoginPassword):
            logins.append((data.login.decode(), data.password.decode()))
            return AuthResult(success=data.password.decode() == PASSWORD)
        return AuthResult(success=False)

    port = free_port()
    controller = aiosmtpd_controller.Controller(
        Handler(), hostname="127.0.0.1", port=port, authenticator=authenticate,
        auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    yield port, messages, logins
    controller.stop()


def test_email_once_and_on_recovery_with_the_password_only_from_the_environment(
    env: CliEnv, smtp: tuple[int, list[Any], list[tuple[str, str]]]
) -> None:
    port, messages, logins = smtp
    failing_job(env, alerts_table(
        email=["ops@example.org"], smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
        smtp_user="autosync", **{"from": "autosync@beamline.example.org"},
    ))  # fmt: skip
    environ = env.environ() | {"GLOBUS_AUTOSYNC_SMTP_PASSWORD": PASSWORD}
    env.cli("run", code=1, env=environ)
    env.cli("run", code=None, env=environ)
    [(to, msg)] = messages
    assert to == ["ops@example.org"] and logins == [("autosync", PASSWORD)]
    assert msg["From"] == "autosync@beamline.example.org"
    assert msg["Subject"] == f"globus-autosync on {socket.gethostname()}: detector is failing"
    assert "What to do:" in msg.get_payload() and PASSWORD not in msg.get_payload()
    fix(env)
    env.cli("run", env=environ)
    assert len(messages) == 2 and "is ok again" in messages[1][1]["Subject"]
    # the password is nowhere under the state directory (database, log) nor in the config
    for path in [env.config, *env.state.rglob("*")]:
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    res = env.cli("alert-test", env=environ)
    assert res.stdout.startswith("ok    email to ops@example.org: delivered")
    assert len(messages) == 3 and "test alert" in messages[2][1]["Subject"]


def test_alert_test_says_what_happened_on_every_channel(env: CliEnv, receiver: Receiver) -> None:
    dead = free_port()
    env.configure(
        alerts_table(webhook=receiver.url, email=["ops@example.org"], smtp_host="127.0.0.1",
                     smtp_port=dead, smtp_starttls=False),
        job_toml(),
    )  # fmt: skip
    res = env.cli("alert-test", code=3)
    lines = res.stdout.splitlines()
    assert lines[0] == f"ok    webhook to 127.0.0.1:{receiver.port}: delivered"
    assert lines[1].startswith("FAIL  email to ops@example.org: ConnectionRefusedError")
    assert "test alert" in receiver.texts()[0]
    env.configure(job_toml())
    res = env.cli("alert-test", code=2)
    assert "no alert channel configured" in res.stderr


def test_a_password_in_the_file_is_refused_in_one_line(env: CliEnv) -> None:
    env.configure(alerts_table(email=["a@b.org"], smtp_host="h", password="hunter2"), job_toml())
    res = env.cli("run", code=2)
    [line] = res.stderr.splitlines()
    assert "[alerts], key 'password'" in line and "GLOBUS_AUTOSYNC_SMTP_PASSWORD" in line
    assert "hunter2" not in line


def test_watch_sends_alerts_too_once_and_on_recovery(
    env: CliEnv, receiver: Receiver, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    env.configure(
        alerts_table(webhook=receiver.url),
        job_toml(settle="0s", interval="0.2s", batch_window="0s", alert_after=2),
    )
    env.write("a.dat", "a", mtime=LONG_AGO)
    moved = env.root / "src-unmounted"
    env.src.rename(moved)  # the instrument's disk is not there: cycles cannot run
    proc = watcher()
    wait_for("the failing alert", lambda: len(receiver.bodies) >= 1)
    assert "job detector is failing: the last 2 cycles could not run" in receiver.texts()[0]
    moved.rename(env.src)  # mounted again
    wait_for("the file", lambda: (env.dst / "a.dat").exists())
    wait_for("the recovery alert", lambda: len(receiver.bodies) >= 2)
    assert "job detector is ok again (it was failing)" in receiver.texts()[1]
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert len(receiver.bodies) == 2


def test_a_destination_that_lost_files_is_alerted_once_then_its_repair(
    env: CliEnv, receiver: Receiver
) -> None:
    alerts = alerts_table(webhook=receiver.url)
    env.configure(alerts, job_toml(verify_every="1s"))
    for i in range(3):
        env.write(f"scan/f{i}.tif", f"frame {i}", mtime=LONG_AGO)
    env.run()
    env.run()
    assert receiver.texts() == []
    (env.dst / "scan" / "f1.tif").unlink()  # a purge at the destination
    for _ in range(3):  # the scheduled audit finds it; said once, however many runs
        time.sleep(1.05)
        env.run()
    [said] = receiver.texts()
    assert "detector" in said and "no longer holds 1 of the files it had confirmed" in said
    env.configure(alerts, job_toml(verify_every="1s", verify_repair=True))
    time.sleep(1.05)
    env.run()  # the audit queues it again
    env.run()  # sent, and the job is ok again
    assert (env.dst / "scan" / "f1.tif").read_text() == "frame 1"
    assert len(receiver.texts()) == 2 and "ok" in receiver.texts()[1].lower()

"""The emulated Globus for the end-to-end tests: a CliEnv whose job ships through the emulated
Transfer and Auth services (tests/emulator), the ``gx`` fixture, and the steps tests share."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from globus_sdk.token_storage import SQLiteTokenStorage, TokenStorageData

from tests.emulator import DATA_ACCESS_SCOPE, TRANSFER_SCOPE, TransferEmulator
from tests.emulator.fixtures import DST_COLLECTION, SRC_COLLECTION

from .helpers import LONG_AGO, CliEnv, console_script

JOB = "xmas"
NATIVE_APP = "5c3a1f2e-8d4b-4e6a-9b7c-2d1e0f3a4b5c"  # the [globus] client_id of a user login
SRC_PATH = "/src"  # the job's source on the source collection
DST_PATH = "/clusterfs/xmas/xmas-storage/2018"
TRANSFER_RS = "transfer.api.globus.org"


def stderr_lines(res: Any) -> list[str]:
    return [line for line in str(res.stderr).splitlines() if line.strip()]


@dataclass
class Globus:
    """A CliEnv whose job ships through the emulator."""

    env: CliEnv
    emu: TransferEmulator
    cluster: Path  # the destination collection's "/"
    service: bool = True  # run as the emulator's service account (client credentials)

    @property
    def src(self) -> Path:
        return self.env.src

    @property
    def dst(self) -> Path:
        """The job's destination, as a local directory."""
        return self.cluster / DST_PATH.lstrip("/")

    def configure(self, **changes: Any) -> None:
        """The example configuration of a Globus job (no ``settle``: the test files are old),
        with the collections and paths of this test; ``changes`` replace keys (None: leave the
        key out)."""
        job = {
            "name": JOB,
            "source": str(self.src),
            "destination": DST_PATH,
            "transport": "globus",
            "source_collection": SRC_COLLECTION,
            "destination_collection": DST_COLLECTION,
            "source_collection_path": SRC_PATH,
            "sync_level": "mtime",
            "verify_checksum": True,
            "preserve_timestamp": True,
            "max_files_per_task": 10000,
            "max_active_tasks": 3,
            "notify": False,
        } | changes
        lines = ["[globus]", f'client_id = "{NATIVE_APP}"', "[[job]]"]
        lines += [f"{key} = {json.dumps(v)}" for key, v in job.items() if v is not None]
        self.env.config.write_text("\n".join(lines) + "\n")

    def environ(self, **extra: str | None) -> dict[str, str]:
        env = {k: v for k, v in self.env.environ().items() if not k.startswith("GLOBUS_SDK_")}
        env.pop("GLOBUS_AUTOSYNC_CLIENT_ID", None)
        env.pop("GLOBUS_AUTOSYNC_CLIENT_SECRET", None)
        env.update(self.emu.env())
        if self.service:
            env["GLOBUS_AUTOSYNC_CLIENT_ID"] = self.emu.DEFAULT_CLIENT_ID
            env["GLOBUS_AUTOSYNC_CLIENT_SECRET"] = self.emu.DEFAULT_CLIENT_SECRET
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def cli(self, *args: str, code: int | None = 0, **extra: str | None) -> Any:
        return self.env.cli(*args, code=code, env=self.environ(**extra))

    def spawn(
        self, *args: str, piped: bool = False, stdin: bool = False, **extra: str | None
    ) -> subprocess.Popen[str]:
        """The console script started in the background, its output dropped (or ``piped``)."""
        out = subprocess.PIPE if piped else subprocess.DEVNULL
        return subprocess.Popen(
            [*console_script(), *args],
            env=self.environ(**extra),
            cwd=self.env.root,
            stdin=subprocess.PIPE if stdin else None,
            stdout=out,
            stderr=out,
            text=True,
        )

    def run(self, code: int | None = 0) -> Any:
        return self.cli("run", code=code)

    def status(self) -> dict[str, Any]:
        out = json.loads(self.cli("status", "--job", JOB, "--json").stdout)
        rows: list[dict[str, Any]] = out["jobs"]
        return rows[0]

    def tasks_json(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.cli("tasks", "--json").stdout)["tasks"]
        return rows

    def rows(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        with self.env.db() as db:
            return db.execute(sql, args).fetchall()

    def open_batches(self) -> int:
        return int(
            self.rows("SELECT COUNT(*) FROM batches WHERE state IN ('new', 'submitted')")[0][0]
        )

    def send(self, runs: int = 6) -> None:
        """Run cycles, letting the emulator finish its tasks in between, until nothing is
        queued or in flight."""
        for _ in range(runs):
            self.run(code=None)
            self.emu.wait_idle()
            st = self.status()
            if not (st["queued"] or st["in_flight"] or st["waiting"] or st["failed"]):
                return
        raise AssertionError(f"work left after {runs} runs: {self.status()}")

    def seed_login(self, *, expired: bool = False, consents: Sequence[str] = ()) -> str:
        """A user's login, as `globus-autosync login [--collection ID]...` would have stored it;
        answers the identity id."""
        scope = TRANSFER_SCOPE
        if consents:
            scope += "[" + " ".join(f"*{DATA_ACCESS_SCOPE.format(c)}" for c in consents) + "]"
        # a login stores a token for Auth (openid, profile, email) and one for Transfer
        tokens = self.emu.issue_token(f"openid profile email {scope}", client_id=NATIVE_APP)
        identity = str(tokens["identity_id"])
        data = {
            entry["resource_server"]: TokenStorageData(
                resource_server=entry["resource_server"],
                identity_id=identity,
                scope=entry["scope"],
                access_token=entry["access_token"],
                refresh_token=entry["refresh_token"],
                expires_at_seconds=(
                    int(time.time()) - 10 if expired else entry["expires_at_seconds"]
                ),
                token_type="Bearer",
            )
            for entry in [tokens, *tokens["other_tokens"]]
        }
        assert set(data) == {"auth.globus.org", TRANSFER_RS}
        self.env.state.mkdir(parents=True, exist_ok=True, mode=0o700)  # as login makes it
        self.env.state.chmod(0o700)
        storage = SQLiteTokenStorage(self.env.state / "tokens.db", namespace=f"u-{NATIVE_APP}")
        try:
            storage.store_token_data_by_resource_server(data)
        finally:
            storage.close()
        return identity


@pytest.fixture
def gx(tmp_path: Path) -> Iterator[Globus]:
    instrument = tmp_path / "instrument"
    instrument.mkdir()
    env = CliEnv(instrument)
    cluster = tmp_path / "cluster"
    (cluster / "clusterfs" / "xmas" / "xmas-storage").mkdir(parents=True)
    emu = TransferEmulator({SRC_COLLECTION: instrument, DST_COLLECTION: cluster}, max_active=10)
    emu.start()
    g = Globus(env, emu, cluster)
    g.configure()
    try:
        yield g
    finally:
        emu.stop()
    assert not emu.server_errors, "emulator internal errors:\n" + "\n".join(emu.server_errors)


def populate(g: Globus) -> dict[str, bytes]:
    files = {
        "run_Sep2018/YAGline9test/YAGline9test_01791.tif": os.urandom(4000),
        "run_Sep2018/YAGline9test/YAGline9test_01792.tif": os.urandom(3000),
        "run_Sep2018/notes.txt": b"beam at 3 GeV\n",
        "run_Oct2018/a/b/c/deep.dat": os.urandom(100),
        "top.dat": b"",
    }
    for i, (rel, data) in enumerate(sorted(files.items())):
        g.env.write(rel, data, mtime=LONG_AGO + i * 1000 + 0.25)
    (g.src / "run_Oct2018" / "empty" / "deeper").mkdir(parents=True)
    return files


def remote(g: Globus, **changes: Any) -> None:
    """A job whose source is listed through Globus: a path on the source collection."""
    job = {
        "name": JOB,
        "scan": "globus",
        "transport": "globus",
        "source_collection": SRC_COLLECTION,
        "source": "/src",
        "destination_collection": DST_COLLECTION,
        "destination": DST_PATH,
        "settle": "0s",
        "requests_per_second": 20,
    } | changes
    lines = ["[globus]", f'client_id = "{NATIVE_APP}"', "[[job]]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in job.items() if value is not None]
    g.env.config.write_text("\n".join(lines) + "\n")


def log_in(
    gx: Globus, answer: Callable[[str], str], *args: str
) -> subprocess.CompletedProcess[str]:
    """Run ``login --no-browser``: open each link it prints, as a person would, and type back
    what ``answer`` makes of it (the code the browser showed)."""
    proc = gx.spawn("login", "--no-browser", *args, piped=True, stdin=True, PYTHONUNBUFFERED="1")
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    shown: list[str] = []
    try:
        for line in proc.stdout:
            shown.append(line)
            if "/v2/oauth2/authorize?" in line:
                proc.stdin.write(answer(line.strip()) + "\n")
                proc.stdin.flush()
        proc.stdin.close()
        err = proc.stderr.read()
        proc.wait(timeout=60)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(shown), err)


def login_links(res: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    """The query of each login link shown."""
    return [
        dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(line.strip()).query))
        for line in res.stdout.splitlines()
        if "/v2/oauth2/authorize?" in line
    ]

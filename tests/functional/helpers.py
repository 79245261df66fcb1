"""Running the real console script against temporary directories, and looking at what it did."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(sys.executable).parent / "globus-autosync"
LONG_AGO = 1_500_000_000  # 2017-07-14: an mtime far older than any settle time
WAIT = 30.0  # generous: the waits below wait for an event, they do not time anything

# Root ignores file permissions; a child without these capabilities does not.
_DROP_DAC = ["--bounding-set", "-dac_override,-dac_read_search"]


def console_script() -> list[str]:
    """The installed console script (the venv's), or ``python -m`` when it cannot be found."""
    if SCRIPT.exists():
        return [str(SCRIPT)]
    found = shutil.which("globus-autosync")
    return [found] if found else [sys.executable, "-m", "globus_autosync"]


_UNPRIVILEGED: list[str] | None = None


def unprivileged_prefix() -> list[str] | None:
    """A command prefix under which file permissions apply, or None if there is none here.

    Not root: nothing to do. Root: ``setpriv`` drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    from the bounding set, so the child is root but permission bits bind it (checked by trying
    to read a mode 000 file).
    """
    global _UNPRIVILEGED
    if os.geteuid() != 0:
        return []
    if _UNPRIVILEGED is None:
        setpriv = shutil.which("setpriv")
        _UNPRIVILEGED = []
        if setpriv:
            probe = Path(os.environ.get("TMPDIR", "/tmp")) / f".autosync-probe-{os.getpid()}"
            probe.write_text("secret")
            probe.chmod(0)
            try:
                res = subprocess.run(
                    [setpriv, *_DROP_DAC, "cat", str(probe)], capture_output=True, check=False
                )
                if res.returncode != 0 and b"secret" not in res.stdout:
                    _UNPRIVILEGED = [setpriv, *_DROP_DAC]
            finally:
                probe.unlink()
    return _UNPRIVILEGED or None


def job_toml(name: object = "detector", **keys: object) -> str:
    """One [[job]] table: source "src", destination "dst" and settle "0s" unless given; values
    are written with json.dumps (valid TOML for strings, numbers, booleans, lists of strings)."""
    table = {"name": name, "source": "src", "destination": "dst", "settle": "0s", **keys}
    lines = ["[[job]]"] + [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


@dataclass
class CliEnv:
    """A source, a destination, a state directory and a config file under one temporary root."""

    root: Path
    transfers: int | None = None  # the key written into local jobs' tables, if any
    src: Path = field(init=False)
    dst: Path = field(init=False)
    state: Path = field(init=False)
    config: Path = field(init=False)

    def __post_init__(self) -> None:
        self.src = self.root / "src"
        self.dst = self.root / "dst"
        self.state = self.root / "state"
        self.config = self.root / "autosync.toml"
        self.src.mkdir()
        self.dst.mkdir()
        self.configure()

    @property
    def db_path(self) -> Path:
        return self.state / "state.db"

    @property
    def log_path(self) -> Path:
        return self.state / "log" / "globus-autosync.log"

    def job(self, name: object = "detector", **keys: object) -> str:
        """``job_toml``, with this environment's ``transfers`` for a local job."""
        if self.transfers is not None and keys.get("transport", "local") == "local":
            keys = {"transfers": self.transfers, **keys}
        return job_toml(name, **keys)

    def configure(self, *jobs: str) -> None:
        """Write the config file: the given job tables, or one default job."""
        self.config.write_text("".join(jobs) if jobs else self.job())

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        home = self.root / "home"
        env.update(
            GLOBUS_AUTOSYNC_STATE_DIR=str(self.state),
            GLOBUS_AUTOSYNC_CONFIG=str(self.config),
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_STATE_HOME=str(home / ".local" / "state"),
            LC_ALL="C.UTF-8",
        )
        return env

    def popen(self, *args: str, prefix: Sequence[str] = ()) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*prefix, *console_script(), *args],
            env=self.environ(),
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def cli(
        self,
        *args: str,
        code: int | None = 0,
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the console script; assert its exit code unless ``code`` is None."""
        res = subprocess.run(
            [*prefix, *console_script(), *args],
            env=env if env is not None else self.environ(),
            cwd=cwd or self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if code is not None:
            assert res.returncode == code, (
                f"{args}: exit {res.returncode}, expected {code}\n"
                f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}"
            )
        return res

    def metrics(self, *args: str, code: int | None = 0) -> str:
        """A ``run`` (with ``args``) that writes the metrics file; its text."""
        prom = self.root / "m.prom"
        self.cli("run", *args, "--metrics-file", str(prom), code=code)
        return prom.read_text()

    def run(self, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        return self.cli("run", *args, code=code)

    def status(self, job: str = "detector") -> dict[str, Any]:
        out = json.loads(self.cli("status", "--job", job, "--json").stdout)
        rows: list[dict[str, Any]] = out["jobs"]
        assert len(rows) == 1
        return rows[0]

    @contextlib.contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db_path)
        try:
            yield conn
        finally:
            conn.close()

    def log_lines(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return self.log_path.read_text("utf-8").splitlines()

    def write(self, relpath: str, data: bytes | str, mtime: float | None = None) -> Path:
        """A file in the source; ``mtime`` (seconds) sets its modification time."""
        path = self.src / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path


def age_dirs(top: Path, seconds: float = 3600) -> None:
    """Set every directory's mtime ``seconds`` into the past, so that an incremental scan trusts
    it (a directory modified in the last two seconds is listed again anyway)."""
    when = time.time() - seconds
    for dirpath, _, _ in os.walk(top):
        os.utime(dirpath, (when, when))


def tree(top: Path) -> dict[str, bytes]:
    """Every regular file below ``top``: relative path -> content."""
    out: dict[str, bytes] = {}
    for dirpath, _, names in os.walk(top):
        for name in names:
            path = Path(dirpath) / name
            out[path.relative_to(top).as_posix()] = path.read_bytes()
    return out


def assert_mirrored(src: Path, dst: Path, relpaths: Sequence[str] | None = None) -> None:
    """Every file (or those named) is at the destination with the same bytes and mtime_ns."""
    names = list(relpaths) if relpaths is not None else sorted(tree(src))
    assert names, "nothing to compare"
    for rel in names:
        s, d = src / rel, dst / rel
        assert d.is_file(), f"{rel} missing at the destination"
        assert d.read_bytes() == s.read_bytes(), f"{rel}: bytes differ"
        assert d.stat().st_mtime_ns == s.stat().st_mtime_ns, f"{rel}: mtime differs"


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def part_files(top: Path) -> list[str]:
    return sorted(
        str(Path(dirpath, n).relative_to(top))
        for dirpath, _, names in os.walk(top)
        for n in names
        if n.startswith(".autosync-") and n.endswith(".part")
    )


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real small file system of ``size`` (``"1m"``) mounted at ``where`` for the test's
    time (needs root and permission to mount; the test is skipped otherwise)."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@contextlib.contextmanager
def watches(env: CliEnv) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `watch` with the given arguments (waiting until it has started); every one started
    is killed at the end if still there (the ``watcher`` fixtures)."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = env.popen("watch", *args)
        procs.append(proc)
        wait_for("watch to start", lambda: any("watch: started" in x for x in env.log_lines()))
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()

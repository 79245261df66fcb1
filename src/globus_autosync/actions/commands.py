"""Local commands of actions: started detached under a supervisor (``supervise``), looked at
by later cycles through the files of their attempt directory
``<state dir>/actions/<action id>-<attempt>/``: ``manifest.json`` (what the command gets),
``spec.json``, ``lock`` (held while the supervisor lives), ``started``, ``output.log`` and
``exit.json``.

A command never blocks a cycle: starting it is all a cycle does; a ``run`` that ends leaves it
running, and the next cycle of its job (``run`` or ``watch``) records how it ended.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from globus_autosync.store import private

OUTPUT_CAP = 1 << 20  # bytes of a command's output kept in output.log
LOG_CAP = 4000  # bytes of it copied into the log
START_GRACE = 60.0  # a supervisor that has not begun after this never will
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"

# Popen objects of the supervisors this process started: polled so that none stays a zombie
_children: dict[str, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True, slots=True)
class Ended:
    code: int | None
    timed_out: bool
    error: str | None
    output: str  # the first LOG_CAP bytes
    output_bytes: int


def attempt_dir(state_dir: Path, action: int, attempt: int) -> Path:
    return state_dir.absolute() / "actions" / f"{action}-{attempt}"


def clean_env(manifest: Path) -> dict[str, str]:
    """What a command gets: a clean environment and the manifest's path."""
    env = {
        "PATH": CLEAN_PATH,
        "LANG": "C.UTF-8",
        "GLOBUS_AUTOSYNC_MANIFEST": str(manifest),
    }
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    return env


def argv(command: tuple[str, ...], manifest: Path) -> list[str]:
    return [a.replace("{manifest}", str(manifest)) for a in command]


def write_manifest(top: Path, manifest: dict[str, object]) -> Path:
    private.private_dir(top)
    path = top / "manifest.json"
    tmp = top / "manifest.json.tmp"
    private.write_text(tmp, json.dumps(manifest, indent=1))
    os.replace(tmp, path)
    return path


def start(top: Path, command: tuple[str, ...], timeout: float) -> int:
    """Start the supervisor of one attempt (its manifest is written); answers its pid."""
    manifest = top / "manifest.json"
    spec = {
        "argv": argv(command, manifest),
        "env": clean_env(manifest),
        "timeout": timeout,
        "cap": OUTPUT_CAP,
    }
    tmp = top / "spec.json.tmp"
    private.write_text(tmp, json.dumps(spec))
    os.replace(tmp, top / "spec.json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "globus_autosync.actions.supervise", str(top)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        cwd=str(top),
    )
    _children[str(top)] = proc
    return proc.pid


def begun(top: Path) -> bool:
    """The supervisor of this attempt has begun (it may have ended since)."""
    return (top / "started").exists() or _locked(top)


def _locked(top: Path) -> bool:
    try:
        fd = os.open(top / "lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def poll(top: Path, started_at: float | None) -> Ended | None:
    """How the attempt ended, or None while it runs (or is about to)."""
    proc = _children.get(str(top))
    if proc is not None and proc.poll() is not None:
        del _children[str(top)]
    ended = _read(top)
    if ended is not None:
        return ended
    if _locked(top):
        return None
    ended = _read(top)  # it may have ended between the two looks
    if ended is not None:
        return ended
    if (top / "started").exists():
        return Ended(
            None, False, "its supervisor died before it ended (a reboot, a kill -9?)", "", 0
        )
    if started_at is not None and time.time() - started_at < START_GRACE:
        return None
    return Ended(None, False, "it never started (its supervisor did not begin)", "", 0)


def _read(top: Path) -> Ended | None:
    try:
        doc = json.loads((top / "exit.json").read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        return Ended(None, False, f"its exit record is unreadable: {err}", "", 0)
    try:
        with open(top / "output.log", "rb") as fh:
            output = fh.read(LOG_CAP).decode("utf-8", "replace")
    except OSError:
        output = ""
    return Ended(
        doc.get("code"),
        bool(doc.get("timed_out")),
        doc.get("error"),
        output,
        int(doc.get("output_bytes") or 0),
    )

"""The supervisor of one local command (``python -m globus_autosync.actions.supervise DIR``).

Started detached by ``commands.start``, it outlives the cycle (and the ``run``) that started it:
it runs the command described by ``DIR/spec.json`` in a clean environment, keeps the first
``cap`` bytes of its output in ``DIR/output.log``, kills it (its whole process group) at the
timeout, and writes ``DIR/exit.json`` (atomically) when it is over. It holds ``DIR/lock`` for
its lifetime, and creates ``DIR/started`` exclusively before it runs anything: two supervisors of
one attempt never both run the command.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from globus_autosync.store import private

GRACE = 5.0  # seconds between SIGTERM and SIGKILL at the timeout


def _copy(pipe: IO[bytes], out: IO[bytes], cap: int, counted: list[int]) -> None:
    while True:
        chunk = pipe.read(65536)
        if not chunk:
            return
        room = cap - counted[0]
        if room > 0:
            out.write(chunk[:room])
            out.flush()
        counted[0] += len(chunk)


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def supervise(top: Path) -> int:
    lock = os.open(top / "lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another supervisor has this attempt
    try:
        fd = os.open(top / "started", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return 0  # it ran already (or runs): never twice
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    spec = json.loads((top / "spec.json").read_text("utf-8"))
    result: dict[str, object] = {"code": None, "timed_out": False, "error": None}
    begun = time.monotonic()
    counted = [0]
    with open(top / "output.log", "wb", opener=private.opener) as out:
        try:
            proc = subprocess.Popen(
                spec["argv"],
                env=spec["env"],
                cwd=str(top),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as err:
            result.update(code=127, error=f"cannot start {spec['argv'][0]!r}: {err.strerror}")
        else:
            assert proc.stdout is not None
            reader = threading.Thread(
                target=_copy, args=(proc.stdout, out, int(spec["cap"]), counted), daemon=True
            )
            reader.start()
            try:
                result["code"] = proc.wait(timeout=float(spec["timeout"]))
            except subprocess.TimeoutExpired:
                result["timed_out"] = True
                _kill_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=GRACE)
                except subprocess.TimeoutExpired:
                    _kill_group(proc.pid, signal.SIGKILL)
                    proc.wait()
                result["code"] = proc.returncode
            _kill_group(proc.pid, signal.SIGKILL)  # what it left behind in its group
            reader.join(timeout=GRACE)
    result.update(seconds=round(time.monotonic() - begun, 3), output_bytes=counted[0])
    tmp = top / "exit.json.tmp"
    private.write_text(tmp, json.dumps(result))
    os.replace(tmp, top / "exit.json")
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a process by the tests
    sys.exit(supervise(Path(sys.argv[1])))

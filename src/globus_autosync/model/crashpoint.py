"""Named points where a test can have the process killed (SIGKILL) to prove crash safety.

``GLOBUS_AUTOSYNC_CRASH_AT=NAME:N`` kills the process the N-th time it passes the point NAME
(``NAME`` alone: the first time). Unset, as always outside the tests, a point costs one
comparison.
"""

from __future__ import annotations

import os

_AT = os.environ.get("GLOBUS_AUTOSYNC_CRASH_AT") or None
_hits: dict[str, int] = {}


def crashpoint(name: str) -> None:
    if _AT is None:
        return
    want, _, count = _AT.partition(":")
    if want != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(count or 1):
        import signal  # here: only a test that asks for a crash needs it (0.5 ms)

        os.kill(os.getpid(), signal.SIGKILL)

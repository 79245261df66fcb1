"""``run --dry-run``: a stand-in transport that records what would be sent, and a scratch copy of
the state database to plan on, so that nothing is sent and the store is not touched."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from globus_autosync.errors import JobError
from globus_autosync.store import Store
from globus_autosync.transports import Item, TaskReport, Transport
from globus_autosync.transports.base import Check, Copy, Held


class DryTransport:
    """Stands in for the real transport in ``--dry-run``: records what would be sent."""

    name = "dry-run"
    synchronous = False

    def __init__(self, real: Transport) -> None:
        self.max_active = 1 << 30
        self.items: list[Item] = []
        self.dirs: list[str] = []
        self.real = real  # looks at the destination for cleanup: read-only

    def ready(self) -> None:
        """What ``run`` checks before a cycle (the destination is there and writable, the
        Globus credentials are valid): a dry run fails, and exits, as the run would."""
        self.real.ready()

    def checks(self) -> list[Check]:
        return []

    def new_submission_id(self) -> str:
        return "dry-run"

    def submit(self, submission_id: str, label: str, items: Sequence[Item]) -> str:
        self.items.extend(items)
        return "dry-run"

    def poll(self, task_id: str, items: Sequence[Item], submitted_at: float) -> TaskReport:
        return TaskReport(False)

    def mkdirs(self, relpaths: Sequence[str]) -> dict[str, str]:
        self.dirs.extend(relpaths)
        return {}

    def task_url(self, task_id: str) -> str | None:
        return None

    def verify_copies(self, reldir: str, names: Sequence[str]) -> dict[str, Copy]:
        return self.real.verify_copies(reldir, names)

    def held(self, reldir: str) -> Held:
        return self.real.held(reldir)

    def close(self) -> None:
        pass


def scratch_copy(state_dir: Path, stack: ExitStack) -> Store:
    """The state database copied to a scratch file outside the state dir (deleted when the
    stack closes): a dry run may plan freely and write nothing, and memory stays flat."""
    import tempfile  # here: tempfile costs a run that is not dry 3 ms

    try:
        scratch = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="autosync-dry-run-", ignore_cleanup_errors=True)
            )
        )
        copy = sqlite3.connect(scratch / "state.db", isolation_level=None)
        stack.callback(copy.close)
        disk = Store.open_readonly(state_dir)
        if disk is not None:
            try:
                disk.conn.backup(copy)
            finally:
                disk.close()
        store = Store(copy, scratch / "state.db")
        store.ensure_schema()
    except (OSError, sqlite3.Error) as err:
        where = tempfile.tempdir or os.environ.get("TMPDIR") or "/tmp"
        why = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise JobError(
            f"dry run: cannot copy the state database to a scratch file in {where}: {why}; "
            "free space there, or point TMPDIR at another disk"
        ) from None
    return store

"""What a Globus task's state means for its files: the errors in ``nice_status`` that do not
clear by waiting, the files a failed task found already up to date, a failure's one line."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from globus_autosync.config import Job
from globus_autosync.errors import TransportError
from globus_autosync.globus.listing import TransferCalls, Vanished, list_entries, missing
from globus_autosync.store.heartbeats import DESTINATION
from globus_autosync.transports.base import DONE, Item, Outcome

# A task's nice_status names an error it "hit within the past 15 minutes" and retries
# (https://docs.globus.org/api/transfer/task/#task_fields, docs.globus.org/guides/overviews/
# task_behavior: "Queued ... it also hit an error within the past 15 minutes"): never a reason
# to cancel it. These do not clear by waiting: the task is left to Globus (which ends it at its
# deadline) and the batch says why, with what to do, for as long as it lasts.
LASTING_NICE_STATUS = {
    "NO_SPACE_LEFT": "the destination is full: free space there",
    "QUOTA_EXCEEDED": "a quota is exceeded at the destination: free space or raise the quota",
    "INVALID_PATH_NAME": "the destination refuses a path name: rename the file, or exclude it",
    "NOT_A_DIRECTORY": "a path at the destination is a file where a directory is needed: "
    "remove or rename it there",
    "PATH_TOO_LONG": "a path is too long for the destination: shorten it, or exclude it",
}


def up_to_date(
    session: TransferCalls,
    dst: str,
    dst_path: Callable[[str], str],
    job: Job,
    items: Sequence[Item],
) -> dict[str, Outcome]:
    """Those of ``items`` the destination holds as Globus's sync_level would skip them: the
    same size (and modification time to the second, for "mtime"), looked at by listing
    each directory once. With "checksum" nothing is taken as up to date by a listing."""
    level = job.globus.sync_level
    if level == "checksum":
        return {}
    by_dir: dict[str, list[Item]] = {}
    for item in items:
        by_dir.setdefault(posixpath.dirname(item.relpath), []).append(item)
    out: dict[str, Outcome] = {}
    for reldir, group in by_dir.items():
        path = dst_path(reldir)
        try:
            entries = list_entries(
                session,
                dst,
                path,
                f"list {path} on the destination",
                missing(path),
                side=DESTINATION,
            )
        except (Vanished, TransportError):
            continue  # not known to be there: sent again
        held = {e["name"]: e for e in entries if e.get("type") == "file"}
        for item in group:
            entry = held.get(posixpath.basename(item.relpath))
            if entry is None:
                continue
            same = level == "exists" or int(entry["size"]) == item.size
            if same and level == "mtime":
                same = listed_mtime(entry) == item.mtime_ns // 1_000_000_000
            if same:
                out[item.relpath] = Outcome(DONE)
    return out


def listed_mtime(entry: dict[str, Any]) -> int | None:
    """An ls entry's ``last_modified`` ("2021-01-15 01:45:50+00:00") in whole seconds."""
    try:
        return int(datetime.fromisoformat(str(entry["last_modified"])).timestamp())
    except (KeyError, ValueError):
        return None


def task_failure(task: Any) -> str:
    fatal = task.get("fatal_error") or {}
    if fatal:
        return f"task failed: {fatal.get('code')}: {fatal.get('description')}"
    return f"task failed ({task.get('nice_status') or 'no reason given'})"

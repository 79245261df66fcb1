"""The append-only audit log of source deletions, ``<state dir>/log/deletions.jsonl``: one JSON
object a line, written durably before the deletions are resolved in the store.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from globus_autosync.errors import JobError
from globus_autosync.store import Candidate, private
from globus_autosync.store.names import escape

AUDIT_NAME = "deletions.jsonl"
_AUDIT_TAIL = 1 << 20  # bytes of the audit log read back to resolve an interrupted deletion

# one encoder for every line; the entries hold no containers, so no check for cycles
_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


class AuditKey(NamedTuple):
    """What identifies a deletion in the audit log."""

    source: object
    mtime_ns: object
    ino: object


def audit_path(state_dir: Path) -> Path:
    return state_dir / "log" / AUDIT_NAME


def audit_key(entry: dict[str, object]) -> AuditKey:
    return AuditKey(entry.get("source"), entry.get("mtime_ns"), entry.get("ino"))


def _tail(path: Path) -> bytes:
    """The end of the deletion log (``_AUDIT_TAIL`` bytes: its first line may be cut)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - _AUDIT_TAIL))
        return fh.read()


def latest(state_dir: Path, job: str, limit: int = 20) -> list[dict[str, object]]:
    """The job's latest deletions (newest first) from the end of the deletion log, for the
    status page; none when there is no log or it cannot be read."""
    try:
        tail = _tail(audit_path(state_dir))
    except OSError:
        return []
    out: list[dict[str, object]] = []
    for raw in reversed(tail.splitlines()):
        try:
            entry = json.loads(raw)
        except ValueError:
            continue  # the first line of the tail may be cut
        if isinstance(entry, dict) and entry.get("job") == job:
            out.append(entry)
            if len(out) >= limit:
                break
    return out


def every(state_dir: Path, job: str) -> Iterator[dict[str, object]]:
    """Every deletion of the job in the deletion log, oldest first (``verify``)."""
    try:
        fh = open(audit_path(state_dir), "rb")  # noqa: SIM115 (closed below, as a generator)
    except OSError:
        return
    with fh:
        for raw in fh:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # a line torn by a crash
            if isinstance(entry, dict) and entry.get("job") == job:
                yield entry


class AuditLog:
    """The lines of one job's deletions, buffered until ``write``."""

    def __init__(
        self,
        state_dir: Path,
        job: str,
        source_root: str,
        dest_root: str,
        collection: str | None,
    ) -> None:
        self.path = audit_path(state_dir)
        self.job, self.source_root, self.dest_root = job, source_root, dest_root
        self.collection = collection
        self._lines: list[str] = []
        self._stamp: tuple[int, str] = (-1, "")  # (second, its ISO form)

    def entry(self, relpath: str, c: Candidate, recovered: bool) -> dict[str, object]:
        """One deletion's record; ``recovered``: the next run wrote it."""
        now = int(time.time())
        if now != self._stamp[0]:  # the same to the second for many lines: formatted once
            self._stamp = (now, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)))
        entry: dict[str, object] = {
            "time": self._stamp[1],
            "job": self.job,
            "source": escape(f"{self.source_root}/{relpath}"),
            "size": c.size,
            "mtime_ns": c.mtime_ns,
            "ino": c.ino,
            "destination": escape(f"{self.dest_root}/{relpath}"),
            "destination_collection": self.collection or None,
            "batch": c.batch,
            "task_id": c.task_id or None,
        }
        if recovered:
            entry["recovered"] = True
        return entry

    def add(self, entry: dict[str, object]) -> None:
        self._lines.append(_encode(entry))

    def audited(self) -> set[AuditKey]:
        """The deletions the end of the audit log already records."""
        try:
            tail = _tail(self.path)
        except FileNotFoundError:
            return set()
        except OSError as err:
            raise JobError(f"cannot read the deletion log {self.path}: {err.strerror}") from None
        seen = set()
        for raw in tail.splitlines():
            try:
                seen.add(audit_key(json.loads(raw)))
            except (ValueError, AttributeError):
                continue  # the first line of the tail may be cut
        return seen

    def write(self) -> None:
        """Append the lines of the deletions made, durably, before they are resolved."""
        if not self._lines:
            return
        path = self.path
        data = ("\n".join(self._lines) + "\n").encode("utf-8")
        try:
            private.private_dir(path.parent)
            fd = private.create(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
            try:
                end = os.fstat(fd).st_size
                if end and os.pread(fd, 1, end - 1) != b"\n":
                    data = b"\n" + data  # a line torn by a failed write stays a line of its own
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as err:
            # the deletions stay journaled: the next run writes their lines
            raise JobError(
                f"cannot write the deletion log {path}: {err.strerror}; fix it, then run again "
                "(the deletions made are journaled and recorded by the next run)"
            ) from None
        self._lines.clear()

"""The transport seam: the engine decides what to send; a transport sends it and reports back.

A batch is handed to ``submit`` with a submission id the store has already journaled. The
transport answers with a task id, and ``poll`` later says, per file, what became of it. A file
is confirmed only by ``poll``; never on the strength of ``submit`` alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:  # at run time: a local run need not define it (0.9 ms)
    from globus_autosync.globus.collections import CollectionDoc

__all__ = [
    "DONE",
    "FAIL",
    "RETRY",
    "SKIP",
    "Check",
    "Copy",
    "Held",
    "Item",
    "Outcome",
    "OutcomeKind",
    "TaskReport",
    "Transport",
    "WatchesCollections",
]

DONE: Literal["done"] = "done"
SKIP: Literal["skipped"] = "skipped"
FAIL: Literal["failed"] = "failed"
RETRY: Literal["retry"] = "retry"  # not sent, through no fault of the file: look at it again
OutcomeKind = Literal["done", "skipped", "failed", "retry"]


class Item(NamedTuple):
    """One file of a batch: its path relative to the job's source (and destination)."""

    relpath: str
    size: int
    mtime_ns: int


class Outcome(NamedTuple):
    result: OutcomeKind
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class TaskReport:
    """What a transport knows of a task. ``finished`` false: ask again in a later cycle.

    When finished, a file missing from ``outcomes`` is ``failed`` with ``reason``.
    """

    finished: bool
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    reason: str | None = None  # why the task failed, was canceled, or is waiting
    state: str = ""  # the transport's own word for the task's state, for ``tasks``


# every regular file of a destination directory: (size, mtime_ns or None), by name
Held = Mapping[str, tuple[int, int | None]]


class Copy(NamedTuple):
    """A file as the destination holds it; ``mtime_ns`` None where the transport cannot tell
    it exactly (Globus lists whole seconds)."""

    size: int
    mtime_ns: int | None


@dataclass(frozen=True, slots=True)
class Check:
    """One line of ``check``."""

    what: str
    ok: bool
    detail: str = ""


class Transport(Protocol):
    """What a job needs from a destination."""

    name: str
    max_active: int  # batches in flight at once
    synchronous: bool  # a submitted batch is finished when ``submit`` returns

    def checks(self) -> list[Check]:
        """Everything that can be verified without moving data."""
        ...

    def ready(self) -> None:
        """Cheap test before a cycle: raise TransportError if no data can go anywhere now."""
        ...

    def new_submission_id(self) -> str:
        """An id to journal with a batch before it is submitted."""
        ...

    def submit(self, submission_id: str, label: str, items: Sequence[Item]) -> str:
        """Start a batch; answers the task id. The same submission id never starts a second task."""
        ...

    def poll(self, task_id: str, items: Sequence[Item], submitted_at: float) -> TaskReport:
        """What became of a batch: finished (each file's outcome), or not yet (with the reason
        someone must act, if any). A transport never cancels a task on its own."""
        ...

    def mkdirs(self, relpaths: Sequence[str]) -> dict[str, str]:
        """Create empty directories (an existing one is fine); answers {relpath: error}."""
        ...

    def task_url(self, task_id: str) -> str | None:
        """Where a person can look at a task, if anywhere."""
        ...

    def verify_copies(self, reldir: str, names: Sequence[str]) -> dict[str, Copy]:
        """What the destination holds of these files of one directory, looked at now: the
        regular files found, by name (a missing one is left out). Raises TransportError when
        the destination cannot be looked at."""
        ...

    def held(self, reldir: str) -> Held:
        """Every regular file the destination holds in one directory, looked at now, by name
        (empty when the directory is not there). Raises TransportError when the destination
        cannot be looked at (``verify``)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class WatchesCollections(Protocol):
    """A transport whose collections can be down (Globus): their documents, and the faults
    (``nice_status``) its tasks showed at their last poll, by task id."""

    task_faults: dict[str, str]

    def collections(self) -> list[CollectionDoc]:
        """Read both collections' documents; raises TransportError or AuthError."""
        ...

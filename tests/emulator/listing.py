"""``operation_ls`` of the emulated Transfer service: entries, ``filter``, Google Drive mode.

``filter`` as the Transfer API documents it: clauses ``field:value`` joined by ``/`` must all
hold (AND); several ``filter`` parameters are alternatives (OR). Fields: ``name`` (``~glob``,
``!~glob``, ``=name``, ``!=name``, or a comma-separated list of names), ``type`` (a comma-separated
list of ``file``, ``dir``, ``invalid_symlink``), ``last_modified`` (``T1,T2``: from T1 to T2,
either bound may be empty; ISO times, UTC unless they say otherwise), ``size`` (``>N``, ``>=N``,
``<N``, ``<=N``, ``=N``).

A Google-Drive-like collection (:meth:`TransferEmulator.google_drive`): its root is virtual and
lists only ``/My Drive`` and ``/Shared With Me``; a folder keeps the ``last_modified`` it had when
first listed, whatever is added to it (Drive does not bump folder times); no symbolic links; and
two entries of one folder may share a name: a local file named ``NAME~dupN`` lists as ``NAME``
beside ``NAME``, and any operation on a path through such a name answers ``AMBIGUOUS_PATH``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ._common import JSONDict, parse_time, space_time, transfer_error
from .tasks import file_document

DRIVE_ROOTS = ("My Drive", "Shared With Me")
DUPLICATE = re.compile(r"^(.*)~dup\d+$")


class DriveState:
    """What a Google-Drive-like collection remembers: each folder's first-seen time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder_times: dict[Path, float] = {}
        for name in DRIVE_ROOTS:
            (root / name).mkdir(exist_ok=True)

    def folder_time(self, path: Path, mtime: float) -> float:
        return self.folder_times.setdefault(path, mtime)

    def ambiguous(self, local: Path) -> str | None:
        """The first component of ``local`` (below the root) that names two entries."""
        try:
            parts = local.relative_to(self.root).parts
        except ValueError:
            return None
        here = self.root
        for part in parts:
            if any(_listed_as(n) == part for n in os.listdir(here) if DUPLICATE.match(n)):
                return part
            here = here / part
            if not here.is_dir():
                break
        return None


def _listed_as(name: str) -> str:
    dup = DUPLICATE.match(name)
    return dup.group(1) if dup else name


def entries(directory: Path, show_hidden: bool, drive: DriveState | None) -> Iterator[JSONDict]:
    """The entries of one local directory as ``operation_ls`` shows them, sorted by name."""
    if drive is not None and directory == drive.root:
        for name in DRIVE_ROOTS:
            doc = file_document(directory / name, name)
            doc["last_modified"] = space_time(drive.folder_time(directory / name, 0.0))
            yield doc
        return
    for child in sorted(directory.iterdir(), key=lambda p: p.name):
        if not show_hidden and child.name.startswith("."):
            continue
        if ".globus-emulator-" in child.name:
            continue
        name = child.name
        if drive is not None:
            if child.is_symlink():
                continue  # Google Drive has no symbolic links
            name = _listed_as(name)
        try:
            doc = file_document(child, name)
        except OSError:
            if not child.is_symlink():
                continue
            doc = _invalid_link(child, name)
        if drive is not None and doc["type"] == "dir":
            doc["last_modified"] = space_time(drive.folder_time(child, child.stat().st_mtime))
        yield doc


def _invalid_link(path: Path, name: str) -> JSONDict:
    st = path.lstat()
    return {
        "DATA_TYPE": "file",
        "name": name,
        "type": "invalid_symlink",
        "size": st.st_size,
        "last_modified": space_time(st.st_mtime),
        "permissions": "0777",
        "user": None,
        "group": None,
        "link_target": os.readlink(path),
        "link_group": None,
        "link_last_modified": None,
        "link_size": None,
        "link_user": None,
    }


def _clause(entry: JSONDict, field: str, value: str, resource: str) -> bool:
    if field == "name":
        name = entry["name"]
        if value.startswith("!~"):
            return not fnmatch.fnmatchcase(name, value[2:])
        if value.startswith("~"):
            return fnmatch.fnmatchcase(name, value[1:])
        if value.startswith("!="):
            return bool(name != value[2:])
        if value.startswith("="):
            return bool(name == value[1:])
        return name in value.split(",")
    if field == "type":
        return entry["type"] in value.split(",")
    if field == "last_modified":
        low, sep, high = value.partition(",")
        if not sep:
            raise transfer_error(400, "ClientError.BadRequest",
                                 f"Invalid last_modified filter {value!r}", resource)  # fmt: skip
        when = parse_time(entry["last_modified"])
        return (not low or when >= parse_time(low)) and (not high or when <= parse_time(high))
    if field == "size":
        match = re.fullmatch(r"(>=|<=|>|<|=)?(\d+)", value)
        if match is None:
            raise transfer_error(400, "ClientError.BadRequest",
                                 f"Invalid size filter {value!r}", resource)  # fmt: skip
        op, n, size = match.group(1) or "=", int(match.group(2)), int(entry["size"])
        return {">": size > n, ">=": size >= n, "<": size < n, "<=": size <= n, "=": size == n}[op]
    raise transfer_error(400, "ClientError.BadRequest", f"Invalid filter field {field!r}",
                         resource)  # fmt: skip


def apply_filters(entries: list[JSONDict], filters: list[str], resource: str) -> list[JSONDict]:
    """Keep the entries that match any filter (each filter: all its clauses)."""
    filters = [f for f in filters if f]
    if not filters:
        return entries
    parsed: list[list[tuple[str, str]]] = []
    for raw in filters:
        clauses = []
        for clause in raw.split("/"):
            field, sep, value = clause.partition(":")
            if not sep or not value:
                raise transfer_error(400, "ClientError.BadRequest",
                                     f"Invalid filter {raw!r}", resource)  # fmt: skip
            clauses.append((field, value))
        parsed.append(clauses)
    return [
        e for e in entries
        if any(all(_clause(e, f, v, resource) for f, v in clauses) for clauses in parsed)
    ]  # fmt: skip

"""The TOML configuration file, parsed into frozen dataclasses.

Every error names the file, the job and the key, so one line is enough to fix it.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from globus_autosync.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_JOB_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TRANSPORTS = ("local", "globus")
SYNC_LEVELS = ("exists", "size", "mtime", "checksum")


def parse_duration(text: str) -> float:
    """``"30s"``, ``"5m"``, ``"24h"``, ``"7d"`` -> seconds. Raises ValueError."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit: 30s, 5m, 24h, 2d")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass(frozen=True)
class GlobusSettings:
    client_id: str | None = None


@dataclass(frozen=True)
class Job:
    name: str
    source: Path
    destination: str
    transport: str = "local"
    settle: float = 30.0
    exclude: tuple[str, ...] = ()
    symlinks: str = "skip"
    full_scan_every: float = 86400.0
    interval: float = 10.0
    batch_window: float = 60.0
    transfers: int = 4  # local: files of a batch copied at once
    # Globus (transport = "globus")
    source_collection: str | None = None
    destination_collection: str | None = None
    source_collection_path: str | None = None
    sync_level: str = "mtime"
    verify_checksum: bool = True
    preserve_timestamp: bool = True
    max_files_per_task: int = 10000
    max_active_tasks: int = 3
    task_deadline: float = 86400.0
    notify: bool = False


@dataclass(frozen=True)
class Config:
    path: Path
    jobs: tuple[Job, ...]
    globus: GlobusSettings

    def select(self, name: str | None) -> tuple[Job, ...]:
        """Every job, or the one named; an unknown name is a usage error with a suggestion."""
        if name is None:
            return self.jobs
        for job in self.jobs:
            if job.name == name:
                return (job,)
        names = [j.name for j in self.jobs]
        raise ConfigError(f"{self.path}: no job named {name!r}{_did_you_mean(name, names)}")


def _did_you_mean(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if choices:
        return f" (known: {', '.join(sorted(choices))})"
    return ""


class _Reader:
    """Reads one table of the file, recording which keys were used and naming them in errors."""

    def __init__(self, path: Path, where: str, table: dict[str, Any]) -> None:
        self.path, self.where, self.table = path, where, table

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.where}, key {key!r}: {message}")

    def check_keys(self, allowed: list[str]) -> None:
        for key in self.table:
            if key not in allowed:
                raise self.fail(key, f"unknown key{_did_you_mean(key, allowed)}")

    def get(self, key: str, kind: type, default: Any = None, required: bool = False) -> Any:
        if key not in self.table:
            if required:
                raise ConfigError(f"{self.path}: {self.where}: missing required key {key!r}")
            return default
        value = self.table[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise self.fail(key, f"expected {_KIND_NAMES.get(kind, kind.__name__)}, got {value!r}")
        return value

    def duration(self, key: str, default: float, minimum: float = 0.0) -> float:
        text = self.get(key, str)
        if text is None:
            return default
        try:
            seconds = parse_duration(text)
        except ValueError as err:
            raise self.fail(key, str(err)) from None
        if seconds < minimum:
            raise self.fail(key, f"must be at least {minimum:g}s")
        return seconds

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value: str = self.get(key, str, default)
        if value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def positive_int(self, key: str, default: int) -> int:
        value: int = self.get(key, int, default)
        if value < 1:
            raise self.fail(key, "must be a whole number of at least 1")
        return value

    def uuid(self, key: str, required: bool) -> str | None:
        value: str | None = self.get(key, str, required=required)
        if value is not None and not _UUID.match(value):
            raise self.fail(key, f"{value!r} is not a collection id (a UUID)")
        return value


_KIND_NAMES = {str: "a string", int: "a whole number", bool: "true or false", list: "a list"}

_JOB_KEYS_ALL = [
    "name", "source", "destination", "transport", "settle", "exclude", "symlinks",
    "full_scan_every", "interval", "batch_window", "source_collection",
    "destination_collection", "source_collection_path", "sync_level", "verify_checksum",
    "preserve_timestamp", "max_files_per_task", "max_active_tasks", "task_deadline", "notify",
    "transfers",
]  # fmt: skip
_GLOBUS_ONLY = (
    "source_collection", "destination_collection", "source_collection_path", "sync_level",
    "verify_checksum", "preserve_timestamp", "max_active_tasks", "task_deadline", "notify",
)  # fmt: skip
_LOCAL_ONLY = ("transfers",)


def _resolve(base: Path, value: str) -> Path:
    return (base / os.path.expanduser(value)).absolute()


def _job(path: Path, index: int, table: Any) -> Job:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [[job]] number {index + 1} is not a table")
    name = table.get("name")
    where = f"job {name!r}" if isinstance(name, str) else f"[[job]] number {index + 1}"
    r = _Reader(path, where, table)
    r.check_keys(_JOB_KEYS_ALL)
    name = r.get("name", str, required=True)
    if not _JOB_NAME.match(name):
        raise r.fail("name", f"{name!r} may use only letters, digits, '.', '_' and '-'")
    base = path.parent
    transport = r.choice("transport", TRANSPORTS, "local")
    source = _resolve(base, r.get("source", str, required=True))
    raw_dest: str = r.get("destination", str, required=True)
    if transport == "local":
        dest_path = _resolve(base, raw_dest)
        if dest_path == source or source in dest_path.parents or dest_path in source.parents:
            raise r.fail(
                "destination",
                f"{dest_path} overlaps the source {source}; each run would copy its own output "
                "(or overwrite its input): choose a directory outside the source",
            )
        destination = str(dest_path)
        for key in _GLOBUS_ONLY:
            if key in table:
                raise r.fail(key, 'applies only to transport = "globus"')
    else:
        if not raw_dest.startswith("/"):
            raise r.fail("destination", "must be an absolute path on the destination collection")
        destination = raw_dest.rstrip("/") or "/"
        for key in _LOCAL_ONLY:
            if key in table:
                raise r.fail(key, 'applies only to transport = "local"')
    exclude = r.get("exclude", list, [])
    if not all(isinstance(p, str) and p for p in exclude):
        raise r.fail("exclude", "must be a list of glob patterns (strings)")
    scp: str | None = r.get("source_collection_path", str)
    if scp is not None and not scp.startswith("/"):
        raise r.fail("source_collection_path", "must be an absolute path on the source collection")
    return Job(
        name=name,
        source=source,
        destination=destination,
        transport=transport,
        settle=r.duration("settle", 30.0),
        exclude=tuple(exclude),
        symlinks=r.choice("symlinks", ("skip", "follow"), "skip"),
        full_scan_every=r.duration("full_scan_every", 86400.0, minimum=1.0),
        interval=r.duration("interval", 10.0, minimum=0.1),
        batch_window=r.duration("batch_window", 60.0),
        transfers=r.positive_int("transfers", 4),
        source_collection=r.uuid("source_collection", required=transport == "globus"),
        destination_collection=r.uuid("destination_collection", required=transport == "globus"),
        source_collection_path=(scp.rstrip("/") or "/") if scp else None,
        sync_level=r.choice("sync_level", SYNC_LEVELS, "mtime"),
        verify_checksum=r.get("verify_checksum", bool, True),
        preserve_timestamp=r.get("preserve_timestamp", bool, True),
        max_files_per_task=r.positive_int("max_files_per_task", 10000),
        max_active_tasks=r.positive_int("max_active_tasks", 3),
        task_deadline=r.duration("task_deadline", 86400.0, minimum=60.0),
        notify=r.get("notify", bool, False),
    )


def load(path: Path) -> Config:
    """Read and validate a configuration file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no configuration file; write one with 'globus-autosync init {path}'"
        ) from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the configuration: {err.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse(path.absolute(), data)


def parse(path: Path, data: dict[str, Any]) -> Config:
    top = _Reader(path, "top level", data)
    top.check_keys(["job", "globus"])
    globus_table = top.get("globus", dict, {})
    g = _Reader(path, "[globus]", globus_table)
    g.check_keys(["client_id"])
    globus = GlobusSettings(client_id=g.get("client_id", str))
    tables = top.get("job", list, [])
    if not tables:
        raise ConfigError(f"{path}: no [[job]] defined; add one (see 'globus-autosync init')")
    jobs: list[Job] = []
    for i, table in enumerate(tables):
        job = _job(path, i, table)
        if any(j.name == job.name for j in jobs):
            raise ConfigError(f"{path}: job {job.name!r}, key 'name': duplicate job name")
        jobs.append(job)
    return Config(path=path, jobs=tuple(jobs), globus=globus)

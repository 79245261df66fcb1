"""The TOML configuration file, parsed into named tuples (frozen; cheaper to define than
dataclasses at each start-up).

Every error names the file, the job and the key, so one line is enough to fix it.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from globus_autosync.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_JOB_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TRANSPORTS = ("local", "globus")
SCANS = ("local", "globus")  # where a job's source is listed: the filesystem or Transfer's ls
MAX_REQUESTS_PER_SECOND = 20.0  # Globus meters about 20 API requests a second per user
SYNC_LEVELS = ("exists", "size", "mtime", "checksum")


def parse_duration(text: str) -> float:
    """``"30s"``, ``"5m"``, ``"24h"``, ``"7d"`` -> seconds. Raises ValueError."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit: 30s, 5m, 24h, 2d")
    return float(m.group(1)) * _UNITS[m.group(2)]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKMGTP]i?)?B?\s*$")
_SIZE_UNITS = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
               "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}  # fmt: skip


def parse_size(text: str) -> int:
    """``"500GB"``, ``"2TB"``, ``"1.5TiB"``, ``"4096"`` -> bytes. Raises ValueError."""
    m = _SIZE.match(text)
    if not m or not text.strip():
        raise ValueError(f"{text!r} is not a size; write e.g. 500GB, 2TB or 1.5TiB")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2) or ""])


class FreeSpace(NamedTuple):
    """How much of the source's file system cleanup keeps free: a share of it, or bytes."""

    percent: float | None = None
    size: int | None = None

    def bytes_of(self, total: int) -> int:
        """The free bytes wanted on a file system of ``total`` bytes."""
        if self.percent is not None:
            return int(total * self.percent / 100)
        return self.size or 0

    def __str__(self) -> str:
        if self.percent is not None:
            return f"{self.percent:g}%"
        from globus_autosync.engine.summary import human_bytes

        return human_bytes(self.size or 0)


def parse_free_space(text: str) -> FreeSpace:
    """``"20%"`` or a size -> FreeSpace. Raises ValueError."""
    stripped = text.strip()
    if stripped.endswith("%"):
        try:
            percent = float(stripped[:-1])
        except ValueError:
            percent = -1.0
        if not 0 < percent < 100:
            raise ValueError(f"{text!r}: a percentage must lie between 0% and 100%")
        return FreeSpace(percent=percent)
    size = parse_size(text)
    if size <= 0:
        raise ValueError(f"{text!r}: the space to keep free must be more than 0 bytes")
    return FreeSpace(size=size)


class GlobusSettings(NamedTuple):
    client_id: str | None = None


class Job(NamedTuple):
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
    # source cleanup (off unless delete_after or keep_free is set)
    delete_after: float | None = None
    keep_free: FreeSpace | None = None
    max_deletes: int = 10000
    delete_empty_dirs: bool = True
    # health (health.py): lagging past alert_lag; failing after alert_after cycles that failed
    alert_lag: float = 3600.0
    alert_after: int = 3
    # actions when data is confirmed (see actions.py): a flow run and/or a local command
    on_done: str | None = None
    flow: str | None = None
    flow_input: str = "{}"  # a JSON object (the TOML table), merged into the flow's input
    command: tuple[str, ...] = ()
    command_timeout: float = 3600.0
    dataset_quiet: float = 600.0
    dataset_marker: str | None = None
    # a source listed through the Transfer API (scan = "globus", sources/globus.py)
    scan: str = "local"
    requests_per_second: float = 5.0

    @property
    def cleanup(self) -> bool:
        """Source files are deleted once their copy is confirmed and verified."""
        return self.delete_after is not None or self.keep_free is not None


class AlertSettings(NamedTuple):
    """The top-level ``[alerts]`` table: where a message goes when a job's health changes.
    The SMTP password is never in the file: it is read from GLOBUS_AUTOSYNC_SMTP_PASSWORD."""

    webhook: str | None = None
    email: tuple[str, ...] = ()
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str | None = None
    sender: str | None = None  # the key "from"
    repeat_every: float = 6 * 3600.0

    @property
    def enabled(self) -> bool:
        return bool(self.webhook or self.email)


NO_ALERTS = AlertSettings()


class Config(NamedTuple):
    path: Path
    jobs: tuple[Job, ...]
    globus: GlobusSettings
    alerts: AlertSettings = NO_ALERTS

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
    "delete_after", "keep_free", "max_deletes", "delete_empty_dirs",
    "alert_lag", "alert_after", "scan", "requests_per_second",
    "on_done", "flow", "flow_input", "command", "command_timeout", "dataset_quiet",
    "dataset_marker",
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
    scan, rps = _scan(r, table, transport)
    raw_source: str = r.get("source", str, required=True)
    if scan == "globus":  # a path on the source collection, not a local directory
        if not raw_source.startswith("/"):
            raise r.fail("source", 'with scan = "globus", must be an absolute path on the '
                         "source collection, e.g. \"/My Drive/beamtime\"")  # fmt: skip
        source = Path(raw_source.rstrip("/") or "/")
    else:
        source = _resolve(base, raw_source)
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
    delete_after = r.duration("delete_after", -1.0) if "delete_after" in table else None
    keep_free = _keep_free(r)
    if (delete_after is not None or keep_free is not None) and transport == "globus":
        verified = r.get("verify_checksum", bool, True) or r.get("sync_level", str) == "checksum"
        if not verified:
            key = "delete_after" if delete_after is not None else "keep_free"
            raise r.fail(
                key,
                'source cleanup with transport = "globus" needs verify_checksum = true or '
                'sync_level = "checksum", so that only a copy Globus has checked is trusted',
            )
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
        delete_after=delete_after,
        keep_free=keep_free,
        max_deletes=r.positive_int("max_deletes", 10000),
        delete_empty_dirs=r.get("delete_empty_dirs", bool, True),
        alert_lag=r.duration("alert_lag", 3600.0, minimum=1.0),
        alert_after=r.positive_int("alert_after", 3),
        scan=scan,
        requests_per_second=rps,
        **_actions(r),
    )


def _scan(r: _Reader, table: dict[str, Any], transport: str) -> tuple[str, float]:
    """The keys of a source listed through the Transfer API: ``scan`` and its pace."""
    scan = r.choice("scan", SCANS, "local")
    if scan == "local":
        if "requests_per_second" in table:
            raise r.fail("requests_per_second", 'applies only to scan = "globus"')
        return scan, 5.0
    if transport != "globus":
        raise r.fail("scan", '"globus" lists the source through Globus: it needs '
                     'transport = "globus" (and source_collection)')  # fmt: skip
    if "source_collection_path" in table:
        raise r.fail("source_collection_path", 'not used with scan = "globus": "source" is '
                     "already the path on the source collection; remove this key")  # fmt: skip
    for key in ("delete_after", "keep_free"):
        if key in table:
            raise r.fail(key, 'source cleanup is not available with scan = "globus" (deleting '
                         "on a remote collection is not built); remove this key")  # fmt: skip
    rps = table.get("requests_per_second", 5.0)
    number = isinstance(rps, int | float) and not isinstance(rps, bool)
    if not number or not 0 < rps <= MAX_REQUESTS_PER_SECOND:
        raise r.fail("requests_per_second", "must be a number above 0 and at most "
                     f"{MAX_REQUESTS_PER_SECOND:g} (Globus meters about 20 requests a second "
                     "per user)")  # fmt: skip
    return scan, float(rps)


_ALERT_KEYS = ["webhook", "email", "smtp_host", "smtp_port", "smtp_starttls", "smtp_user",
               "from", "repeat_every"]  # fmt: skip


def _alerts(path: Path, table: dict[str, Any]) -> AlertSettings:
    r = _Reader(path, "[alerts]", table)
    if "password" in table or "smtp_password" in table:
        key = "password" if "password" in table else "smtp_password"
        raise r.fail(key, "the SMTP password is never read from the file; remove it and set "
                     "the environment variable GLOBUS_AUTOSYNC_SMTP_PASSWORD")  # fmt: skip
    r.check_keys(_ALERT_KEYS)
    webhook: str | None = r.get("webhook", str)
    if webhook is not None and not webhook.startswith(("https://", "http://")):
        raise r.fail("webhook", f"{webhook!r} is not an http(s) URL")
    email = r.get("email", list, [])
    if not all(isinstance(a, str) and "@" in a for a in email):
        raise r.fail("email", 'must be a list of addresses, e.g. ["ops@example.org"]')
    host: str | None = r.get("smtp_host", str)
    if email and not host:
        raise r.fail("smtp_host", "is needed to send e-mail: the SMTP server's name")
    port: int = r.get("smtp_port", int, 587)
    if not 0 < port < 65536:
        raise r.fail("smtp_port", "must be a port number (1-65535)")
    return AlertSettings(
        webhook=webhook,
        email=tuple(email),
        smtp_host=host,
        smtp_port=port,
        smtp_starttls=r.get("smtp_starttls", bool, True),
        smtp_user=r.get("smtp_user", str),
        sender=r.get("from", str),
        repeat_every=r.duration("repeat_every", 6 * 3600.0, minimum=1.0),
    )


def _actions(r: _Reader) -> dict[str, Any]:
    """The keys of actions (on_done, flow, command, ...), checked together."""
    on_done: str | None = None
    if "on_done" in r.table:
        on_done = r.choice("on_done", ("batch", "dataset"), "batch")
    flow: str | None = r.get("flow", str)
    if flow is not None and not _UUID.match(flow):
        raise r.fail("flow", f"{flow!r} is not a flow id (a UUID, as the web app shows it)")
    command = r.get("command", list, [])
    if "command" in r.table and (not command or not all(isinstance(a, str) for a in command)):
        raise r.fail("command", 'must be a list of strings: ["/path/to/program", "{manifest}"]')
    flow_input = r.get("flow_input", dict, {})
    if on_done is None:
        for key in ("flow", "command", "flow_input", "command_timeout"):
            if key in r.table:
                raise r.fail(key, 'needs on_done = "batch" or "dataset" to say when it runs')
    elif flow is None and not command:
        raise r.fail("on_done", "needs a flow (a Globus Flow id) or a command to run")
    if on_done != "dataset":
        for key in ("dataset_quiet", "dataset_marker"):
            if key in r.table:
                raise r.fail(key, 'applies only with on_done = "dataset"')
    if flow is None and "flow_input" in r.table:
        raise r.fail("flow_input", "applies only with a flow")
    marker: str | None = r.get("dataset_marker", str)
    if marker is not None and not marker:
        raise r.fail("dataset_marker", "must be a glob pattern such as 'scan_done' or '*.done'")
    return {
        "on_done": on_done,
        "flow": flow.lower() if flow else None,
        "flow_input": _json(flow_input) if flow_input else "{}",
        "command": tuple(command),
        "command_timeout": r.duration("command_timeout", 3600.0, minimum=1.0),
        "dataset_quiet": r.duration("dataset_quiet", 600.0),
        "dataset_marker": marker,
    }


def _json(value: dict[str, Any]) -> str:
    import json  # here: a job without flow_input needs none (start-up counts)

    return json.dumps(value, sort_keys=True, default=str)


def _keep_free(r: _Reader) -> FreeSpace | None:
    text: str | None = r.get("keep_free", str)
    if text is None:
        return None
    try:
        return parse_free_space(text)
    except ValueError as err:
        raise r.fail("keep_free", str(err)) from None


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
    top.check_keys(["job", "globus", "alerts"])
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
    alerts = _alerts(path, top.get("alerts", dict, {}))
    return Config(path=path, jobs=tuple(jobs), globus=globus, alerts=alerts)

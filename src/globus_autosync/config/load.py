"""Reading the TOML file into records, checked key by key against the table of keys.

Every error names the file, the job and the key, so one line is enough to fix it.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from globus_autosync.config.keys import (
    BY_TABLE,
    JOB_KEYS,
    ON_DONE,
    SCANS,
    SYMLINKS,
    SYNC_LEVELS,
    TRANSPORTS,
    A,
    ConfigKey,
    G,
)
from globus_autosync.config.reader import UUID, Reader
from globus_autosync.config.records import (
    AlertSettings,
    Config,
    GlobusSettings,
    Job,
    JobActions,
    JobCleanup,
    JobGlobus,
)
from globus_autosync.config.units import FreeSpace, parse_free_space
from globus_autosync.errors import ConfigError

_JOB_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
MAX_REQUESTS_PER_SECOND = 20.0  # Globus meters about 20 API requests a second per user


def _resolve(base: Path, value: str) -> Path:
    return (base / os.path.expanduser(value)).absolute()


def _job(path: Path, index: int, table: Any) -> Job:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [[job]] number {index + 1} is not a table")
    name = table.get("name")
    where = f"job {name!r}" if isinstance(name, str) else f"[[job]] number {index + 1}"
    r = Reader(path, where, table, JOB_KEYS)
    r.check_keys()
    name = r.get("name", required=True)
    if not _JOB_NAME.match(name):
        raise r.fail("name", f"{name!r} may use only letters, digits, '.', '_' and '-'")
    base = path.parent
    transport = r.choice("transport", TRANSPORTS)
    scan, rps = _scan(r, table, transport)
    raw_source: str = r.get("source", required=True)
    if scan == "globus":  # a path on the source collection, not a local directory
        if not raw_source.startswith("/"):
            raise r.fail(
                "source",
                'with scan = "globus", must be an absolute path on the '
                'source collection, e.g. "/My Drive/beamtime"',
            )
        source = Path(raw_source.rstrip("/") or "/")
    else:
        source = _resolve(base, raw_source)
    raw_dest: str = r.get("destination", required=True)
    if transport == "local":
        dest_path = _resolve(base, raw_dest)
        if dest_path == source or source in dest_path.parents or dest_path in source.parents:
            raise r.fail(
                "destination",
                f"{dest_path} overlaps the source {source}; each run would copy its own output "
                "(or overwrite its input): choose a directory outside the source",
            )
        destination = str(dest_path)
    else:
        if not raw_dest.startswith("/"):
            raise r.fail("destination", "must be an absolute path on the destination collection")
        destination = raw_dest.rstrip("/") or "/"
    r.not_for("transport", transport)
    exclude = r.get("exclude")
    if not all(isinstance(p, str) and p for p in exclude):
        raise r.fail("exclude", "must be a list of glob patterns (strings)")
    cleanup = _cleanup(r, transport)
    return Job(
        name=name,
        source=source,
        destination=destination,
        transport=transport,
        settle=r.duration("settle"),
        exclude=tuple(exclude),
        symlinks=r.choice("symlinks", SYMLINKS),
        full_scan_every=r.duration("full_scan_every", minimum=1.0),
        interval=r.duration("interval", minimum=0.1),
        batch_window=r.duration("batch_window"),
        max_files_per_task=r.positive_int("max_files_per_task"),
        transfers=r.positive_int("transfers"),
        scan=scan,
        requests_per_second=rps,
        alert_lag=r.duration("alert_lag", minimum=1.0),
        alert_after=r.positive_int("alert_after"),
        hang_after=r.duration("hang_after", minimum=1.0),
        verify_every=r.duration("verify_every", minimum=1.0),
        verify_repair=r.get("verify_repair"),
        globus=_globus(r, transport),
        cleanup=cleanup,
        actions=_actions(r),
    )


def _globus(r: Reader, transport: str) -> JobGlobus:
    scp: str | None = r.get("source_collection_path")
    if scp is not None and not scp.startswith("/"):
        raise r.fail("source_collection_path", "must be an absolute path on the source collection")
    return JobGlobus(
        source_collection=r.uuid("source_collection", required=transport == "globus"),
        destination_collection=r.uuid("destination_collection", required=transport == "globus"),
        source_collection_path=(scp.rstrip("/") or "/") if scp else None,
        sync_level=r.choice("sync_level", SYNC_LEVELS),
        verify_checksum=r.get("verify_checksum"),
        preserve_timestamp=r.get("preserve_timestamp"),
        max_active_tasks=r.positive_int("max_active_tasks"),
        task_deadline=r.duration("task_deadline", minimum=60.0),
        email_notifications=r.get("notify"),
    )


def _cleanup(r: Reader, transport: str) -> JobCleanup:
    delete_after = r.duration("delete_after")
    keep_free = _keep_free(r)
    if (delete_after is not None or keep_free is not None) and transport == "globus":
        verified = r.get("verify_checksum") or r.get("sync_level") == "checksum"
        if not verified:
            key = "delete_after" if delete_after is not None else "keep_free"
            raise r.fail(
                key,
                'source cleanup with transport = "globus" needs verify_checksum = true or '
                'sync_level = "checksum", so that only a copy Globus has checked is trusted',
            )
    return JobCleanup(
        delete_after=delete_after,
        keep_free=keep_free,
        max_deletes=r.positive_int("max_deletes"),
        delete_empty_dirs=r.get("delete_empty_dirs"),
    )


def _scan(r: Reader, table: dict[str, Any], transport: str) -> tuple[str, float]:
    """The keys of a source listed through the Transfer API: ``scan`` and its pace."""
    scan: str = r.choice("scan", SCANS)
    rps: float = JOB_KEYS["requests_per_second"].value
    if scan == "local":
        r.not_for("scan", scan)
        return scan, rps
    if transport != "globus":
        raise r.fail(
            "scan",
            '"globus" lists the source through Globus: it needs '
            'transport = "globus" (and source_collection)',
        )
    if "source_collection_path" in table:
        raise r.fail(
            "source_collection_path",
            'not used with scan = "globus": "source" is '
            "already the path on the source collection; remove this key",
        )
    for key in ("delete_after", "keep_free"):
        if key in table:
            raise r.fail(
                key,
                'source cleanup is not available with scan = "globus" (deleting '
                "on a remote collection is not built); remove this key",
            )
    value = table.get("requests_per_second", rps)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not 0 < value <= MAX_REQUESTS_PER_SECOND:
        raise r.fail(
            "requests_per_second",
            "must be a number above 0 and at most "
            f"{MAX_REQUESTS_PER_SECOND:g} (Globus meters about 20 requests a second "
            "per user)",
        )
    return scan, float(value)


def _alerts(path: Path, table: dict[str, Any]) -> AlertSettings:
    r = Reader(path, "[alerts]", table, BY_TABLE[A])
    if "password" in table or "smtp_password" in table:
        key = "password" if "password" in table else "smtp_password"
        raise r.fail(
            key,
            "the SMTP password is never read from the file; remove it and set "
            "the environment variable GLOBUS_AUTOSYNC_SMTP_PASSWORD",
        )
    r.check_keys()
    webhook: str | None = r.get("webhook")
    if webhook is not None and not webhook.startswith(("https://", "http://")):
        raise r.fail("webhook", f"{webhook!r} is not an http(s) URL")
    email = r.get("email")
    if not all(isinstance(a, str) and "@" in a for a in email):
        raise r.fail("email", 'must be a list of addresses, e.g. ["ops@example.org"]')
    host: str | None = r.get("smtp_host")
    if email and not host:
        raise r.fail("smtp_host", "is needed to send e-mail: the SMTP server's name")
    port: int = r.get("smtp_port")
    if not 0 < port < 65536:
        raise r.fail("smtp_port", "must be a port number (1-65535)")
    return AlertSettings(
        webhook=webhook,
        email=tuple(email),
        smtp_host=host,
        smtp_port=port,
        smtp_starttls=r.get("smtp_starttls"),
        smtp_user=r.get("smtp_user"),
        sender=r.get("from"),
        repeat_every=r.duration("repeat_every", minimum=1.0),
    )


def _actions(r: Reader) -> JobActions:
    """The keys of actions (on_done, flow, command, ...), checked together."""
    on_done: str | None = r.choice("on_done", ON_DONE)
    flow: str | None = r.get("flow")
    if flow is not None and not UUID.match(flow):
        raise r.fail("flow", f"{flow!r} is not a flow id (a UUID, as the web app shows it)")
    command = r.get("command")
    if "command" in r.table and (not command or not all(isinstance(a, str) for a in command)):
        raise r.fail("command", 'must be a list of strings: ["/path/to/program", "{manifest}"]')
    flow_input = r.get("flow_input")
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
    marker: str | None = r.get("dataset_marker")
    if marker is not None and not marker:
        raise r.fail("dataset_marker", "must be a glob pattern such as 'scan_done' or '*.done'")
    return JobActions(
        on_done=on_done,
        flow=flow.lower() if flow else None,
        flow_input=_json(flow_input) if flow_input else JOB_KEYS["flow_input"].value,
        command=tuple(command),
        command_timeout=r.duration("command_timeout", minimum=1.0),
        dataset_quiet=r.duration("dataset_quiet"),
        dataset_marker=marker,
    )


def _json(value: dict[str, Any]) -> str:
    import json  # here: a job without flow_input needs none; json costs a run 1 ms

    return json.dumps(value, sort_keys=True, default=str)


def _keep_free(r: Reader) -> FreeSpace | None:
    text: str | None = r.get("keep_free")
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


_TOP = {"job": "array", "globus": "table", "alerts": "table"}
_TOP_KEYS = {
    k: ConfigKey("", k, toml, [] if toml == "array" else {}, "") for k, toml in _TOP.items()
}


def parse(path: Path, data: dict[str, Any]) -> Config:
    if isinstance(data.get("job"), dict):  # [job]: one table, where a list of them is meant
        raise ConfigError(
            f"{path}: [job] defines one table; a job is written [[job]] (two brackets: one "
            "entry of the list of jobs): replace [job] with [[job]]"
        )
    top = Reader(path, "top level", data, _TOP_KEYS)
    top.check_keys()
    g = Reader(path, "[globus]", top.get("globus"), BY_TABLE[G])
    g.check_keys()
    globus = GlobusSettings(client_id=g.get("client_id"))
    tables = top.get("job")
    if not tables:
        raise ConfigError(f"{path}: no [[job]] defined; add one (see 'globus-autosync init')")
    jobs: list[Job] = []
    for i, table in enumerate(tables):
        job = _job(path, i, table)
        if any(j.name == job.name for j in jobs):
            raise ConfigError(f"{path}: job {job.name!r}, key 'name': duplicate job name")
        jobs.append(job)
    alerts = _alerts(path, top.get("alerts"))
    return Config(path=path, jobs=tuple(jobs), globus=globus, alerts=alerts)

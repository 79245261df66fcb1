"""The configuration in memory: frozen records, one per table of the file, a job's keys grouped
in sections. Every default comes from the table of keys (``keys.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from globus_autosync.config.keys import A, G, default
from globus_autosync.config.units import FreeSpace
from globus_autosync.errors import ConfigError


@dataclass(frozen=True, slots=True)
class JobGlobus:
    """A job's Globus Transfer keys (transport = "globus")."""

    source_collection: str | None = default("source_collection")
    destination_collection: str | None = default("destination_collection")
    source_collection_path: str | None = default("source_collection_path")
    sync_level: str = default("sync_level")
    verify_checksum: bool = default("verify_checksum")
    preserve_timestamp: bool = default("preserve_timestamp")
    max_active_tasks: int = default("max_active_tasks")
    task_deadline: float | None = default("task_deadline")
    email_notifications: bool = default("notify")  # the key "notify": Globus e-mails per task


@dataclass(frozen=True, slots=True)
class JobCleanup:
    """Source cleanup: off unless ``delete_after`` or ``keep_free`` is set."""

    delete_after: float | None = default("delete_after")
    keep_free: FreeSpace | None = default("keep_free")
    max_deletes: int = default("max_deletes")
    delete_empty_dirs: bool = default("delete_empty_dirs")

    @property
    def enabled(self) -> bool:
        """Source files are deleted once their copy is confirmed and verified."""
        return self.delete_after is not None or self.keep_free is not None


@dataclass(frozen=True, slots=True)
class JobActions:
    """What runs when data is confirmed: a flow run and/or a local command."""

    on_done: str | None = default("on_done")
    flow: str | None = default("flow")
    flow_input: str = default("flow_input")  # a JSON object (the TOML table)
    command: tuple[str, ...] = default("command")
    command_timeout: float = default("command_timeout")
    dataset_quiet: float = default("dataset_quiet")
    dataset_marker: str | None = default("dataset_marker")


@dataclass(frozen=True, slots=True)
class Job:
    """One ``[[job]]``: the directory, its walk and its batches; the rest in sections."""

    name: str
    source: Path
    destination: str
    transport: str = default("transport")
    settle: float = default("settle")
    exclude: tuple[str, ...] = default("exclude")
    symlinks: str = default("symlinks")
    full_scan_every: float = default("full_scan_every")
    interval: float = default("interval")
    batch_window: float = default("batch_window")
    max_files_per_task: int = default("max_files_per_task")
    transfers: int = default("transfers")
    scan: str = default("scan")
    requests_per_second: float = default("requests_per_second")
    alert_lag: float = default("alert_lag")  # health: lagging past this
    alert_after: int = default("alert_after")  # health: failing after this many failed cycles
    hang_after: float = default("hang_after")  # health: failing when a cycle stalls this long
    verify_every: float | None = default("verify_every")  # the scheduled audit (None: never)
    verify_repair: bool = default("verify_repair")  # it queues again what it found lost
    globus: JobGlobus = JobGlobus()
    cleanup: JobCleanup = JobCleanup()
    actions: JobActions = JobActions()


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """The top-level ``[alerts]`` table: where a message goes when a job's health changes.
    The SMTP password is never in the file: it is read from GLOBUS_AUTOSYNC_SMTP_PASSWORD."""

    webhook: str | None = default("webhook", A)
    email: tuple[str, ...] = default("email", A)
    smtp_host: str | None = default("smtp_host", A)
    smtp_port: int = default("smtp_port", A)
    smtp_starttls: bool = default("smtp_starttls", A)
    smtp_user: str | None = default("smtp_user", A)
    sender: str | None = default("from", A)  # the key "from"
    repeat_every: float = default("repeat_every", A)

    @property
    def enabled(self) -> bool:
        return bool(self.webhook or self.email)


@dataclass(frozen=True, slots=True)
class GlobusSettings:
    """The top-level ``[globus]`` table."""

    client_id: str | None = default("client_id", G)


NO_ALERTS = AlertSettings()


@dataclass(frozen=True, slots=True)
class Config:
    """The whole file: its jobs and its top-level tables."""

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
        raise ConfigError(f"{self.path}: no job named {name!r}{did_you_mean(name, names)}")


def did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)``, or the known names, or nothing."""
    import difflib  # here: only an error needs it; difflib costs a run 1.4 ms

    close = difflib.get_close_matches(word, choices, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if choices:
        return f" (known: {', '.join(sorted(choices))})"
    return ""

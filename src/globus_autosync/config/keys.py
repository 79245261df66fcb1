"""The one table of the configuration's keys: for each key of ``[[job]]``, ``[alerts]`` and
``[globus]`` its TOML type, its default, what it means, where it applies and where it is kept.

Validation, the records' defaults, ``init``'s template and the docs' reference all read it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from globus_autosync.config.units import parse_duration

TRANSPORTS = ("local", "globus")
SCANS = ("local", "globus")  # where a job's source is listed: the filesystem or Transfer's ls
ON_DONE = ("batch", "dataset")
SYMLINKS = ("skip", "follow")
SYNC_LEVELS = ("exists", "size", "mtime", "checksum")


class ConfigKey(NamedTuple):  # a row of a table made at every start: a tuple defines faster
    """One key of the file. ``default`` is the TOML value taken when the key is absent (None: the
    key is unset and its feature off); ``example`` is what ``init``'s template shows instead."""

    table: str  # "job", "alerts" or "globus"
    name: str
    toml: str  # string, integer, boolean, number, duration, size, array or table
    default: Any
    meaning: str
    section: str = ""  # the Job attribute that holds it ("" for a key of Job itself)
    transports: tuple[str, ...] = TRANSPORTS
    scans: tuple[str, ...] = SCANS
    attr: str = ""  # the record's field when its name is not the key's
    example: Any = None
    required: bool = False

    @property
    def field(self) -> str:
        """The name of the record's field holding the key's value."""
        return self.attr or self.name

    @property
    def value(self) -> Any:
        """The default as the record holds it."""
        if self.default is None:
            return None
        if self.toml == "duration":
            return parse_duration(self.default)
        if self.toml == "array":
            return tuple(self.default)
        if self.toml == "table":
            return "{}"  # the JSON text of the empty table
        if self.toml == "number":
            return float(self.default)
        return self.default


_G = ("globus",)
_L = ("local",)
J, A, G = "job", "alerts", "globus"

KEYS = (
    ConfigKey(G, "client_id", "string", None,
              "a native app's client id, only for 'globus-autosync login'",
              example="<uuid of a native app>"),
    ConfigKey(A, "webhook", "string", None,
              'an http(s) URL posted JSON {"text": ...}: Slack, Mattermost, Teams',
              example="https://hooks.slack.com/services/..."),
    ConfigKey(A, "email", "array", [],
              "addresses an alert is mailed to",
              example=["ops@example.org"]),
    ConfigKey(A, "smtp_host", "string", None,
              "the SMTP server's name (needed with email)",
              example="smtp.example.org"),
    ConfigKey(A, "smtp_port", "integer", 587,
              "the SMTP server's port"),
    ConfigKey(A, "smtp_starttls", "boolean", True,
              "upgrade the SMTP connection with STARTTLS"),
    ConfigKey(A, "smtp_user", "string", None,
              "the SMTP login; its password only from GLOBUS_AUTOSYNC_SMTP_PASSWORD",
              example="autosync"),
    ConfigKey(A, "from", "string", None,
              "the sender's address",
              attr="sender", example="autosync@example.org"),
    ConfigKey(A, "repeat_every", "duration", "6h",
              "the same condition is alerted at most this often"),
    ConfigKey(J, "name", "string", None,
              "unique: letters, digits, . _ -",
              example="detector", required=True),
    ConfigKey(J, "source", "string", None,
              'the directory to send (with scan = "globus": a path on the source collection)',
              example="/data/detector", required=True),
    ConfigKey(J, "destination", "string", None,
              "where files go: a directory, or a path on the destination collection",
              example="/mnt/cluster/detector", required=True),
    ConfigKey(J, "transport", "string", "local",
              '"local" (a mounted directory) or "globus"'),
    ConfigKey(J, "settle", "duration", "30s",
              "sent only after size and mtime were unchanged this long"),
    ConfigKey(J, "exclude", "array", [],
              "glob patterns on names or relative paths",
              example=["*.tmp", ".*"]),
    ConfigKey(J, "symlinks", "string", "skip",
              '"skip" (logged, left) or "follow" (send the target\'s content)'),
    ConfigKey(J, "full_scan_every", "duration", "24h",
              "a full walk this often catches files rewritten in place"),
    ConfigKey(J, "interval", "duration", "10s",
              "watch: the pause between two cycles"),
    ConfigKey(J, "batch_window", "duration", "60s",
              "watch: a batch short of max_files_per_task waits this long"),
    ConfigKey(J, "max_files_per_task", "integer", 10000,
              "files per batch (a Globus task)"),
    ConfigKey(J, "transfers", "integer", 4,
              "files of a batch copied at once (1: one by one)",
              transports=_L),
    ConfigKey(J, "scan", "string", "local",
              '"local" (the filesystem) or "globus" (listed through the Transfer API)'),
    ConfigKey(J, "requests_per_second", "number", 5,
              "the Transfer API listing's pace, at most 20",
              scans=_G),
    ConfigKey(J, "alert_lag", "duration", "1h",
              "health: lagging past this; stopped after this without a good cycle"),
    ConfigKey(J, "alert_after", "integer", 3,
              "health: failing after this many cycles (or file attempts) fail"),
    ConfigKey(J, "hang_after", "duration", "2m",
              "health: failing when a cycle makes no progress this long (a hung mount)"),
    ConfigKey(J, "verify_every", "duration", None,
              "audit the destination this often, a slice between cycles (absent: never)",
              example="7d"),
    ConfigKey(J, "verify_repair", "boolean", False,
              "a scheduled audit queues again what the destination lost (else it says so)"),
    ConfigKey(J, "source_collection", "string", None,
              "the source collection's id",
              section="globus", transports=_G, example="<uuid>"),
    ConfigKey(J, "destination_collection", "string", None,
              "the destination collection's id",
              section="globus", transports=_G, example="<uuid>"),
    ConfigKey(J, "source_collection_path", "string", None,
              "how the source collection names `source`",
              section="globus", transports=_G, example="/data/detector"),
    ConfigKey(J, "sync_level", "string", "mtime",
              "when a file is sent again: exists | size | mtime | checksum",
              section="globus", transports=_G),
    ConfigKey(J, "verify_checksum", "boolean", True,
              "Globus checks each copy's checksum",
              section="globus", transports=_G),
    ConfigKey(J, "preserve_timestamp", "boolean", True,
              "copies keep the source's modification time",
              section="globus", transports=_G),
    ConfigKey(J, "max_active_tasks", "integer", 3,
              "Globus tasks of the job active at once",
              section="globus", transports=_G),
    ConfigKey(J, "task_deadline", "duration", None,
              "a deadline given to each task (unset: Globus extends a task while it progresses)",
              section="globus", transports=_G, example="72h"),
    ConfigKey(J, "notify", "boolean", False,
              "Globus e-mails the owner about each task",
              section="globus", transports=_G, attr="email_notifications"),
    ConfigKey(J, "delete_after", "duration", None,
              'delete a source file this long after its copy is confirmed ("0s": next cycle)',
              section="cleanup", scans=_L, example="7d"),
    ConfigKey(J, "keep_free", "size", None,
              'or "500GB": delete early, oldest first, below this free',
              section="cleanup", scans=_L, example="20%"),
    ConfigKey(J, "max_deletes", "integer", 10000,
              "source files deleted per cycle at most",
              section="cleanup"),
    ConfigKey(J, "delete_empty_dirs", "boolean", True,
              "remove directories cleanup left empty (never the root)",
              section="cleanup"),
    ConfigKey(J, "on_done", "string", None,
              '"batch": per finished batch; "dataset": per scan directory',
              section="actions", example="dataset"),
    ConfigKey(J, "flow", "string", None,
              "a Globus Flow's id: a flow run per action (needs a Globus login)",
              section="actions", example="<uuid of a Globus Flow>"),
    ConfigKey(J, "flow_input", "table", {},
              "merged into the flow's input beside the manifest",
              section="actions", example={"analysis": "xpcs"}),
    ConfigKey(J, "command", "array", [],
              "a local command per action; {manifest} is the manifest's path",
              section="actions", example=["/opt/bin/analyse", "{manifest}"]),
    ConfigKey(J, "command_timeout", "duration", "1h",
              "the command is killed after this, and counted failed",
              section="actions"),
    ConfigKey(J, "dataset_quiet", "duration", "10m",
              "a dataset is finished once nothing in it changed this long",
              section="actions"),
    ConfigKey(J, "dataset_marker", "string", None,
              "...or as soon as a file matching this glob is confirmed",
              section="actions", example="*.done"),
)  # fmt: skip

TABLES = (G, A, J)
BY_TABLE: dict[str, dict[str, ConfigKey]] = {
    t: {k.name: k for k in KEYS if k.table == t} for t in TABLES
}
JOB_KEYS = BY_TABLE[J]


def default(name: str, table: str = J) -> Any:
    """A key's default as the record holds it."""
    return BY_TABLE[table][name].value

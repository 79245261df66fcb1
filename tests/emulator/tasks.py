"""Tasks of the emulated Transfer service: the task model and the file work it does.

:func:`execute` only touches files and may run without the emulator lock; everything
else is called with the lock held.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import posixpath
import shutil
import stat
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ._common import (
    JSONDict,
    iso_time,
    space_time,
)

DEFAULT_DEADLINE = 24 * 3600.0
SKIPPABLE_CODES = frozenset({"FILE_NOT_FOUND", "PERMISSION_DENIED", "AMBIGUOUS_PATH"})
SYNC_LEVELS = {"exists": 0, "size": 1, "mtime": 2, "checksum": 3}
NICE_DESCRIPTIONS = {
    "OK": "OK",
    "Queued": "Queued",
    "FILE_NOT_FOUND": "File not found",
    "PERMISSION_DENIED": "Permission denied",
    "IS_A_DIRECTORY": "Is a directory",
    "NOT_A_DIRECTORY": "Not a directory",
    "NO_SPACE_LEFT": "No space left on device",
    "INVALID_PATH_NAME": "Invalid path name",
    "QUOTA_EXCEEDED": "Quota exceeded",
    "ENDPOINT_ERROR": "Endpoint error",
    "CONNECT_FAILED": "Could not connect to server",
    "UNKNOWN": "Unknown error",
}


def describe(code: str) -> str:
    return NICE_DESCRIPTIONS.get(code, code.replace("_", " ").capitalize())


# --------------------------------------------------------------------------- model


@dataclass
class TaskItem:
    """One transfer_item (source/destination) or delete_item (path in source_path)."""

    source_path: str
    destination_path: str | None = None
    recursive: bool = False


@dataclass
class EmulatedTask:
    """A transfer or delete task. Read its fields from tests; do not mutate them."""

    task_id: str
    type: str  # "TRANSFER" | "DELETE"
    owner: str  # identity id of the submitter
    username: str
    submission_id: str
    label: str | None
    source_endpoint_id: str
    destination_endpoint_id: str | None
    items: list[TaskItem]
    request_time: float
    deadline: float
    sync_level: int | None = None
    verify_checksum: bool = False
    preserve_timestamp: bool = False
    skip_source_errors: bool = False
    fail_on_quota_errors: bool = False
    encrypt_data: bool = False
    delete_destination_extra: bool = False
    recursive_delete: bool = False
    ignore_missing: bool = False
    filter_rules: list[JSONDict] | None = None
    notify: dict[str, bool] = field(default_factory=dict)
    document_fields: JSONDict = field(default_factory=dict)  # submitted document, as sent

    status: str = "ACTIVE"
    nice_status: str | None = "Queued"
    nice_status_details: str | None = None
    fatal_error: JSONDict | None = None
    completion_time: float | None = None
    faults: int = 0
    files: int = 0
    directories: int = 0
    files_skipped: int = 0
    files_transferred: int = 0
    bytes_transferred: int = 0
    bytes_checksummed: int = 0
    subtasks_total: int = 0
    subtasks_succeeded: int = 0
    subtasks_failed: int = 0
    subtasks_pending: int = 0
    subtasks_expired: int = 0
    subtasks_canceled: int = 0
    subtasks_retrying: int = 0
    subtasks_skipped_errors: int = 0
    successful_transfers: list[JSONDict] = field(default_factory=list)
    skipped_errors: list[JSONDict] = field(default_factory=list)
    events: list[JSONDict] = field(default_factory=list)

    # fault injection and scheduling state
    forced_failure: tuple[str, str] | None = None
    stuck_status: str | None = None
    gcp_blocked: bool = False  # a Globus Connect Personal collection of it is down
    has_slot: bool = False
    executing: bool = False
    ready_at: float = 0.0
    retry_at: float = 0.0
    last_error: str | None = None
    ran_once: bool = False
    # deadlines, recent errors and pauses (see unkind.py)
    user_deadline: bool = False  # submitted with a ``deadline``: never extended
    last_progress: float | None = None  # model time of its last completed batch of work
    last_error_time: float | None = None
    transient: tuple[str, float] | None = None  # (code, seconds it shows) before its first run
    paused: bool = False  # by an administrator's pause rule
    pause_message: str | None = None
    paused_at: float | None = None
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    @property
    def stuck(self) -> bool:
        """ACTIVE but not progressing: injected stuck task or backing off after an error."""
        return self.status == "ACTIVE" and (
            self.stuck_status is not None
            or self.gcp_blocked
            or self.paused
            or (self.last_error is not None and not self.has_slot)
        )

    def add_event(self, code: str, description: str, details: str = "", *, error: bool) -> None:
        self.events.append(
            {
                "DATA_TYPE": "event",
                "code": code,
                "description": description,
                "details": details,
                "is_error": error,
                "time": space_time(self.clock()),
            }
        )

    def document(self, collections: dict[str, JSONDict]) -> JSONDict:
        active = self.status == "ACTIVE"
        src = collections.get(self.source_endpoint_id, {})
        dst = collections.get(self.destination_endpoint_id or "", {})
        elapsed = max((self.completion_time or self.clock()) - self.request_time, 1.0)
        return {
            "DATA_TYPE": "task",
            "task_id": self.task_id,
            "type": self.type,
            "status": self.status,
            "label": self.label,
            "owner_id": self.owner,
            "username": self.username,
            "command": "API 0.10",
            "request_time": iso_time(self.request_time),
            "completion_time": (
                iso_time(self.completion_time) if self.completion_time is not None else None
            ),
            "deadline": iso_time(self.deadline),
            "source_endpoint": self.source_endpoint_id,
            "source_endpoint_id": self.source_endpoint_id,
            "source_endpoint_display_name": src.get("display_name"),
            "source_base_path": None,
            "source_local_user": None,
            "source_local_user_status": None,
            "destination_endpoint": self.destination_endpoint_id,
            "destination_endpoint_id": self.destination_endpoint_id,
            "destination_endpoint_display_name": dst.get("display_name"),
            "destination_base_path": None,
            "destination_local_user": None,
            "destination_local_user_status": None,
            "nice_status": self.nice_status if active else None,
            "nice_status_short_description": (
                describe(self.nice_status) if active and self.nice_status else None
            ),
            "nice_status_details": self.nice_status_details if active else None,
            "nice_status_expires_in": -1 if active else None,
            "is_ok": (
                (self.last_error is None and self.stuck_status is None and not self.gcp_blocked)
                if active
                else None
            ),
            "is_paused": self.paused if active else False,
            "fatal_error": self.fatal_error,
            "canceled_by_admin": None,
            "canceled_by_admin_message": None,
            "history_deleted": False,
            "faults": self.faults,
            "files": self.files,
            "directories": self.directories,
            "symlinks": 0,
            "files_skipped": self.files_skipped,
            "files_transferred": self.files_transferred,
            "bytes_transferred": self.bytes_transferred,
            "bytes_checksummed": self.bytes_checksummed,
            "effective_bytes_per_second": int(self.bytes_transferred / elapsed),
            "subtasks_total": self.subtasks_total,
            "subtasks_succeeded": self.subtasks_succeeded,
            "subtasks_failed": self.subtasks_failed,
            "subtasks_pending": self.subtasks_pending,
            "subtasks_expired": self.subtasks_expired,
            "subtasks_canceled": self.subtasks_canceled,
            "subtasks_retrying": self.subtasks_retrying,
            "subtasks_skipped_errors": self.subtasks_skipped_errors,
            "sync_level": self.sync_level,
            "verify_checksum": self.verify_checksum,
            "preserve_timestamp": self.preserve_timestamp,
            "encrypt_data": self.encrypt_data,
            "skip_source_errors": self.skip_source_errors,
            "fail_on_quota_errors": self.fail_on_quota_errors,
            "delete_destination_extra": self.delete_destination_extra,
            "recursive_symlinks": "ignore",
            "filter_rules": self.filter_rules,
        }


@dataclass
class Outcome:
    """What running a task did (computed without the lock, applied with it)."""

    files: int = 0
    directories: int = 0
    files_transferred: int = 0
    files_skipped: int = 0
    bytes_transferred: int = 0
    bytes_checksummed: int = 0
    successful: list[JSONDict] = field(default_factory=list)
    skipped: list[JSONDict] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (code, details)


# --------------------------------------------------------------------------- paths


def globus_to_local(root: Path, gpath: str) -> Path:
    """``/a/b`` (or ``/~/a/b``) on a collection rooted at ``root`` -> ``root/a/b``."""
    text = gpath.strip()
    if text in ("~", "/~") or text.startswith(("~/", "/~/")):
        text = text.split("~", 1)[1]
    normalized = posixpath.normpath("/" + text.lstrip("/"))
    parts = [part for part in normalized.split("/") if part]
    return root.joinpath(*parts)


def display_dir(gpath: str) -> str:
    text = gpath.strip() or "/"
    if text in ("~", "/~") or text.startswith(("~/", "/~/")):
        text = text.split("~", 1)[1] or "/"
    normalized = posixpath.normpath("/" + text.lstrip("/"))
    return normalized if normalized.endswith("/") else normalized + "/"


def _owner_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def _group_name(gid: int) -> str:
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (ImportError, KeyError):
        return str(gid)


def file_document(path: Path, name: str) -> JSONDict:
    st = path.stat()
    link_target: str | None = None
    if path.is_symlink():
        link_target = os.readlink(path)
    return {
        "DATA_TYPE": "file",
        "name": name,
        "type": "dir" if stat.S_ISDIR(st.st_mode) else "file",
        "size": st.st_size,
        "last_modified": space_time(st.st_mtime),
        "permissions": f"{stat.S_IMODE(st.st_mode):04o}",
        "user": _owner_name(st.st_uid),
        "group": _group_name(st.st_gid),
        "link_target": link_target,
        "link_group": None,
        "link_last_modified": None,
        "link_size": None,
        "link_user": None,
    }


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _errno_code(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "PERMISSION_DENIED"
    if isinstance(err, FileNotFoundError):
        return "FILE_NOT_FOUND"
    if err.errno == errno.ENOSPC:
        return "NO_SPACE_LEFT"
    if err.errno == getattr(errno, "EDQUOT", -1):
        return "QUOTA_EXCEEDED"
    if isinstance(err, IsADirectoryError):
        return "IS_A_DIRECTORY"
    if isinstance(err, NotADirectoryError):
        return "NOT_A_DIRECTORY"
    return "UNKNOWN"


def _filter_allows(rules: list[JSONDict] | None, name: str, is_dir: bool) -> bool:
    for rule in rules or []:
        kind = rule.get("type")
        if (kind == "file" and is_dir) or (kind == "dir" and not is_dir):
            continue
        if fnmatch.fnmatchcase(name, str(rule.get("name", ""))):
            return bool(rule.get("method", "exclude") == "include")
    return True


# --------------------------------------------------------------------------- execution


def execute(task: EmulatedTask, roots: dict[str, Path]) -> Outcome:
    """Do the file work of ``task``; safe to call without holding the emulator lock."""
    outcome = Outcome()
    if task.type == "DELETE":
        _execute_delete(task, roots[task.source_endpoint_id], outcome)
        return outcome
    src_root = roots[task.source_endpoint_id]
    dst_root = roots[task.destination_endpoint_id or ""]
    for item in task.items:
        src = globus_to_local(src_root, item.source_path)
        dst = globus_to_local(dst_root, item.destination_path or "")
        if not src.exists():
            _source_error(
                task,
                outcome,
                "FILE_NOT_FOUND",
                item.source_path,
                item.destination_path or "",
                f"No such file or directory: '{item.source_path}'",
                is_directory=item.recursive,
            )
            continue
        if item.recursive:
            if not src.is_dir():
                outcome.errors.append(
                    ("NOT_A_DIRECTORY", f"'{item.source_path}' is not a directory")
                )
                continue
            _copy_tree(task, src, dst, item, outcome)
        else:
            if src.is_dir():
                outcome.errors.append(
                    ("IS_A_DIRECTORY", f"'{item.source_path}' is a directory (recursive=false)")
                )
                continue
            _copy_file(task, src, dst, item.source_path, item.destination_path or "", outcome)
    return outcome


def _source_error(
    task: EmulatedTask,
    outcome: Outcome,
    code: str,
    source_path: str,
    destination_path: str,
    details: str,
    *,
    is_directory: bool,
) -> None:
    if task.skip_source_errors and code in SKIPPABLE_CODES:
        outcome.skipped.append(
            {
                "DATA_TYPE": "skipped_error",
                "source_path": source_path,
                "destination_path": destination_path,
                "error_code": code,
                "error_details": details,
                "error_time": iso_time(task.clock()),
                "is_directory": is_directory,
                "is_symlink": False,
                "is_delete_destination_extra": False,
                "checksum_algorithm": None,
                "external_checksum": None,
            }
        )
    else:
        outcome.errors.append((code, f"{details}\nFile: {source_path}"))


def _copy_tree(task: EmulatedTask, src: Path, dst: Path, item: TaskItem, outcome: Outcome) -> None:
    base_src = item.source_path.rstrip("/")
    base_dst = (item.destination_path or "").rstrip("/")
    kept: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(src):
        current = Path(dirpath)
        rel = current.relative_to(src)
        dirnames[:] = sorted(
            d for d in dirnames if _filter_allows(task.filter_rules, d, is_dir=True)
        )
        outcome.directories += 1
        target_dir = dst / rel
        kept.add(target_dir)
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            outcome.errors.append((_errno_code(err), f"mkdir {target_dir}: {err}"))
            return
        for name in sorted(filenames):
            if not _filter_allows(task.filter_rules, name, is_dir=False):
                continue
            rel_posix = (rel / name).as_posix()
            kept.add(target_dir / name)
            _copy_file(
                task,
                current / name,
                target_dir / name,
                f"{base_src}/{rel_posix}",
                f"{base_dst}/{rel_posix}",
                outcome,
            )
    if task.delete_destination_extra:
        for dirpath, dirnames, filenames in os.walk(dst, topdown=False):
            current = Path(dirpath)
            for name in [*filenames, *dirnames]:
                candidate = current / name
                if candidate in kept:
                    continue
                if candidate.is_dir() and not candidate.is_symlink():
                    shutil.rmtree(candidate, ignore_errors=True)
                else:
                    candidate.unlink(missing_ok=True)


def _in_sync(level: int, src: Path, dst: Path) -> bool:
    try:
        dst_stat = dst.stat()
    except OSError:
        return False
    if not stat.S_ISREG(dst_stat.st_mode):
        return False
    src_stat = src.stat()
    if level == 0:
        return True
    if level == 1:
        return src_stat.st_size == dst_stat.st_size
    if level == 2:
        return int(src_stat.st_mtime) <= int(dst_stat.st_mtime)
    return src_stat.st_size == dst_stat.st_size and _md5(src) == _md5(dst)


def _copy_file(
    task: EmulatedTask,
    src: Path,
    dst: Path,
    source_path: str,
    destination_path: str,
    outcome: Outcome,
) -> None:
    outcome.files += 1
    if task.sync_level is not None and _in_sync(task.sync_level, src, dst):
        outcome.files_skipped += 1
        return
    tmp = dst.with_name(f".{dst.name}.globus-emulator-{uuid.uuid4().hex[:8]}.part")
    try:
        src_stat = src.stat()
        reader = src.open("rb")
    except OSError as err:
        _source_error(
            task,
            outcome,
            _errno_code(err),
            source_path,
            destination_path,
            f"{err.strerror}: '{source_path}'",
            is_directory=False,
        )
        return
    with reader:
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)
            if task.preserve_timestamp:
                os.utime(tmp, ns=(src_stat.st_atime_ns, src_stat.st_mtime_ns))
            os.replace(tmp, dst)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            outcome.errors.append((_errno_code(err), f"write {destination_path}: {err.strerror}"))
            return
    if task.verify_checksum:
        if _md5(src) != _md5(dst):
            outcome.errors.append(("VERIFY_CHECKSUM", f"checksum mismatch on {destination_path}"))
            return
        outcome.bytes_checksummed += src_stat.st_size
    outcome.files_transferred += 1
    outcome.bytes_transferred += src_stat.st_size
    outcome.successful.append(
        {
            "DATA_TYPE": "successful_transfer",
            "source_path": source_path,
            "destination_path": destination_path,
        }
    )


def _execute_delete(task: EmulatedTask, root: Path, outcome: Outcome) -> None:
    for item in task.items:
        target = globus_to_local(root, item.source_path)
        if target == root:
            outcome.errors.append(("PERMISSION_DENIED", "refusing to delete a collection root"))
            continue
        if not target.exists() and not target.is_symlink():
            if not task.ignore_missing:
                outcome.errors.append(
                    ("FILE_NOT_FOUND", f"No such file or directory: '{item.source_path}'")
                )
            continue
        try:
            if target.is_dir() and not target.is_symlink():
                if not task.recursive_delete:
                    outcome.errors.append(
                        ("IS_A_DIRECTORY", f"'{item.source_path}' is a directory (recursive=false)")
                    )
                    continue
                for _dirpath, dirnames, filenames in os.walk(target):
                    outcome.directories += len(dirnames)
                    outcome.files += len(filenames)
                outcome.directories += 1
                shutil.rmtree(target)
            else:
                target.unlink()
                outcome.files += 1
        except OSError as err:
            outcome.errors.append((_errno_code(err), f"delete {item.source_path}: {err}"))

"""Emulation of the Globus Transfer API v0.10 over collections that are local directories.

Paths handled here are relative to ``/v0.10``. Not thread-safe on its own: the emulator
holds its lock around every call.
"""

from __future__ import annotations

import posixpath
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from ._common import (
    Clock,
    HTTPError,
    JSONDict,
    Reply,
    Request,
    iso_time,
    list_order_key,
    new_request_id,
    parse_time,
    transfer_error,
)
from .auth import DATA_ACCESS_SCOPE, TRANSFER_SCOPE, TokenRecord
from .listing import DriveState, apply_filters
from .listing import entries as list_entries
from .tasks import (
    DEFAULT_DEADLINE,
    SYNC_LEVELS,
    EmulatedTask,
    Outcome,
    TaskItem,
    describe,
    display_dir,
    file_document,
    globus_to_local,
)

# Deadlines, from https://docs.globus.org/api/transfer/task_behavior/#deadlines: "Transfer tasks
# submitted without a user-specified deadline will have their deadlines automatically extended if
# they are making progress. Delete tasks default to 24 hours and do not have their deadlines
# automatically extended. [...] The deadline starts at 24 hours after submission. If the transfer
# is making progress, it will regularly have its deadline pushed to 72 hours after its most recent
# successfully completed batch of work. If the transfer is queued and hasn't hit any errors in the
# past 24 hours, its deadline will regularly be pushed to 24 hours away. Paused transfers will not
# have their deadlines automatically extended, but a paused task will have its deadline set to 90
# days after the pause time. When a task is unpaused its deadline is set to 24 hours after the
# unpause time."
PROGRESS_EXTENSION = 72 * 3600.0
QUEUED_EXTENSION = 24 * 3600.0
PAUSED_DEADLINE = 90 * 86400.0


def pause_rule(collection_id: str, message: str | None, since: float) -> JSONDict:
    """A pause rule as ``task_pause_info`` lists it. The field names follow the Transfer docs'
    "Limited pause rule document" heading (task#limited_pause_rule_document) as far as this
    emulator knows them; no recorded answer was found to check them against."""
    return {
        "DATA_TYPE": "pause_rule_limited",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pause:{collection_id}")),
        "message": message,
        "start_time": iso_time(since),
        "endpoint_id": collection_id,
        "identity_id": None,
        "modify": True,
        "read": True,
        "delete": True,
        "rename": True,
        "mkdir": True,
        "ls": True,
        "created_by_host_manager": False,
        "editable": False,
    }


# --------------------------------------------------------------------------- the service


def _bool(value: Any) -> bool:
    return bool(value) if value is not None else False


def _paging_number(req: Request, name: str, default: int, cap: int | None = None) -> int:
    raw = req.arg(name)
    if raw is None or raw == "":
        value = default
    else:
        try:
            value = int(raw)
        except ValueError as err:
            raise transfer_error(
                400, "ClientError.BadRequest", f"Invalid {name} {raw!r}", req.path
            ) from err
    if value < 0:
        raise transfer_error(400, "ClientError.BadRequest", f"Invalid {name} {raw!r}", req.path)
    return min(value, cap) if cap is not None else value


class TransferService:
    """State and HTTP handlers of the emulated Transfer service."""

    def __init__(
        self,
        collections: dict[str, Path],
        *,
        max_active: int,
        task_delay: float,
        clock: Clock | None = None,
    ):
        self.clock = clock if clock is not None else Clock()
        self.roots: dict[str, Path] = {}
        self.collection_docs: dict[str, JSONDict] = {}
        for index, (collection_id, directory) in enumerate(collections.items(), start=1):
            root = Path(directory)
            root.mkdir(parents=True, exist_ok=True)
            self.roots[collection_id] = root.resolve()
            self.collection_docs[collection_id] = self._collection_doc(collection_id, index)
        self.max_active = max_active
        self.task_delay = task_delay
        self.retry_interval = 0.5
        self.page_limit_cap = 1000
        self.ls_limit_cap = 100000  # the most entries one operation_ls page holds
        self.marker_page_size = 100
        self.tasks: dict[str, EmulatedTask] = {}
        self.submissions: list[str] = []
        self.by_submission: dict[str, str] = {}
        self.issued_submission_ids: set[str] = set()
        self.consent_required: set[str] = set()
        self.max_concurrent_active = 0
        self.pending_failures: deque[tuple[str, str]] = deque()
        self.pending_sticks: deque[str] = deque()
        self.tasks_held = False
        self.drives: dict[str, DriveState] = {}  # Google-Drive-like collections (listing.py)
        self.denied: set[tuple[str, Path]] = set()  # (collection, directory) ls refuses: 403
        # switches of unkind.py, all off by default
        self.extend_deadlines = False
        self.label_limit: int | None = None
        self.list_order: str | None = None  # None: task_list newest first, as always here
        self.ls_limit_key = False  # True: ls answers carry "limit" and "offset" (not real)
        self.refused_paths: dict[tuple[str, Path], tuple[int, str]] = {}  # ls: (status, code)
        self.pending_transients: deque[tuple[str, float]] = deque()

    @staticmethod
    def _collection_doc(collection_id: str, index: int) -> JSONDict:
        return {
            "DATA_TYPE": "endpoint",
            "id": collection_id,
            "display_name": f"Emulated Collection {index}",
            "canonical_name": f"emulator#{collection_id}",
            "entity_type": "GCSv5_mapped_collection",
            "high_assurance": False,
            "authentication_assurance_timeout": None,
            "owner_id": "2f4d6a8c-1b3e-4f5a-8c7d-9e0f1a2b3c4d",
            "owner_string": "emulator@globusid.org",
            "username": "emulator",
            "organization": "Globus Emulator",
            "department": None,
            "description": "A local directory served by the test emulator",
            "contact_email": None,
            "keywords": None,
            "gcs_version": "5.4.70",
            "gcs_manager_url": None,
            "tlsftp_server": f"tlsftp://{collection_id}.emulator.invalid:443",
            "https_server": None,
            "non_functional": False,
            "non_functional_endpoint_id": None,
            "non_functional_endpoint_display_name": None,
            "mapped_collection_id": None,
            "mapped_collection_display_name": None,
            "host_endpoint_id": None,
            "host_endpoint": None,
            "host_path": None,
            "is_globus_connect": False,
            "globus_connect_setup_key": None,
            "gcp_connected": None,
            "gcp_paused": None,
            "public": False,
            "shareable": True,
            "acl_available": False,
            "acl_editable": False,
            "activated": True,
            "expires_in": -1,
            "default_directory": "/",
            "force_encryption": False,
            "force_verify": False,
            "disable_verify": False,
            "disable_anonymous_writes": False,
            "subscription_id": None,
            "entity_type_description": None,
            "local_user_info_available": True,
            "user_message": None,
            "user_message_link": None,
            "DATA": [],
        }

    # ----------------------------------------------------------------- scheduling

    def running_counts(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for task in self.tasks.values():
            if task.status == "ACTIVE" and task.has_slot:
                key = (task.owner, task.type)
                counts[key] = counts.get(key, 0) + 1
        return counts

    def schedule(self, now: float) -> EmulatedTask | None:
        """Expire, assign slots, and pick the next task whose turn to run has come."""
        self.tick(now)
        for task in self.tasks.values():
            if task.status == "ACTIVE" and not task.executing:
                self.gcp_gate(task)
        counts = self.running_counts()
        for task in self.tasks.values():
            if task.status != "ACTIVE" or task.has_slot or task.stuck_status is not None:
                continue
            if task.paused:
                continue
            if task.gcp_blocked:
                continue
            if task.retry_at and now < task.retry_at:
                continue
            key = (task.owner, task.type)
            if counts.get(key, 0) < self.max_active:
                counts[key] = counts.get(key, 0) + 1
                task.has_slot = True
                task.ready_at = now + self.task_delay
                if task.last_error is None:
                    task.nice_status = "OK"
                    task.nice_status_details = None
            elif task.last_error is None:
                task.nice_status = "Queued"
        if counts:
            self.max_concurrent_active = max(self.max_concurrent_active, *counts.values())
        if self.tasks_held:
            return None
        for task in self.tasks.values():
            if (
                task.status == "ACTIVE"
                and task.has_slot
                and not task.executing
                and now >= task.ready_at
            ):
                if task.forced_failure is not None:
                    self.fail(task, *task.forced_failure, now=now)
                    continue
                if task.transient is not None:
                    self._show_transient(task, now)
                    continue
                task.executing = True
                return task
        return None

    def tick(self, now: float) -> None:
        """Deadlines at model time ``now``: extend those the service extends (when
        ``extend_deadlines`` is on), expire those past theirs."""
        for task in self.tasks.values():
            if task.status != "ACTIVE" or task.executing:
                continue
            if self.extend_deadlines:
                self._extend(task, now)
            if now >= task.deadline:
                self._expire(task, now)

    @staticmethod
    def _extend(task: EmulatedTask, now: float) -> None:
        if task.type != "TRANSFER" or task.user_deadline or task.paused:
            return
        if task.last_progress is not None:
            task.deadline = max(task.deadline, task.last_progress + PROGRESS_EXTENSION)
        recent_error = (
            task.last_error_time is not None and now - task.last_error_time < QUEUED_EXTENSION
        )
        queued = not task.has_slot and task.stuck_status is None and not recent_error
        if queued and now < task.deadline:  # a jump of the clock past it expires it
            task.deadline = max(task.deadline, now + QUEUED_EXTENSION)

    def _show_transient(self, task: EmulatedTask, now: float) -> None:
        """The task hits an error the service retries: it shows it in nice_status (an error
        "within the past 15 minutes", task_behavior#queuing), backs off, then goes on."""
        code, seconds = task.transient or ("UNKNOWN", 0.0)
        task.transient = None
        task.has_slot = False
        task.last_error, task.last_error_time = code, now
        task.nice_status = code
        task.nice_status_details = f"Injected by the emulator: {describe(code)}"
        task.faults += 1
        task.retry_at = now + seconds
        task.subtasks_retrying = 1
        task.add_event(code, describe(code).lower(), task.nice_status_details, error=True)

    def pause(self, task: EmulatedTask, message: str | None, now: float) -> None:
        task.paused, task.pause_message, task.paused_at = True, message, now
        if not task.executing:
            task.has_slot = False
        if self.extend_deadlines and task.type == "TRANSFER" and not task.user_deadline:
            task.deadline = now + PAUSED_DEADLINE

    def unpause(self, task: EmulatedTask, now: float) -> None:
        task.paused, task.pause_message = False, None
        if self.extend_deadlines and task.type == "TRANSFER" and not task.user_deadline:
            task.deadline = now + QUEUED_EXTENSION

    def gcp_down(self, collection_id: str) -> str | None:
        """GC_NOT_CONNECTED or GC_PAUSED when this is a Globus Connect Personal collection
        that is not connected or is paused (see TransferEmulator.set_gcp)."""
        doc = self.collection_docs.get(collection_id, {})
        if not doc.get("is_globus_connect"):
            return None
        if doc.get("gcp_connected") is False:
            return "GC_NOT_CONNECTED"
        if doc.get("gcp_paused"):
            return "GC_PAUSED"
        return None

    def gcp_gate(self, task: EmulatedTask) -> None:
        """A task touching a collection that is down waits, ACTIVE, showing why (as Globus
        does); it is queued again when the collection is back."""
        ends = [task.source_endpoint_id, task.destination_endpoint_id]
        down = next((d for d in (self.gcp_down(c) for c in ends if c) if d), None)
        if down is not None:
            task.gcp_blocked, task.has_slot = True, False
            task.nice_status, task.nice_status_details = down, f"Injected by the emulator: {down}"
        elif task.gcp_blocked:
            task.gcp_blocked = False
            task.nice_status, task.nice_status_details = "Queued", None

    def is_idle(self) -> bool:
        return not any(t.status == "ACTIVE" and not t.stuck for t in self.tasks.values())

    def apply(self, task: EmulatedTask, outcome: Outcome, now: float) -> None:
        task.executing = False
        task.has_slot = False
        if task.status != "ACTIVE":  # canceled (or expired) while running
            return
        if not task.ran_once:
            task.ran_once = True
            task.add_event("STARTED", "started", "", error=False)
        seen = {(s["source_path"], s["destination_path"]) for s in task.successful_transfers}
        for entry in outcome.successful:
            if (entry["source_path"], entry["destination_path"]) not in seen:
                task.successful_transfers.append(entry)
        task.files = outcome.files
        task.directories = outcome.directories
        task.files_skipped = outcome.files_skipped
        task.files_transferred = len(task.successful_transfers)
        task.bytes_transferred += outcome.bytes_transferred
        task.bytes_checksummed += outcome.bytes_checksummed
        if outcome.successful or outcome.bytes_transferred or outcome.files_skipped:
            task.last_progress = now
        work = len(task.items) + outcome.files + outcome.directories
        if outcome.errors:
            code, details = outcome.errors[0]
            task.last_error_time = now
            task.faults += len(outcome.errors)
            task.last_error = code
            task.nice_status = code
            task.nice_status_details = details
            task.retry_at = now + self.retry_interval
            task.subtasks_total = work
            task.subtasks_retrying = len(outcome.errors)
            task.subtasks_pending = len(outcome.errors)
            task.subtasks_succeeded = work - len(outcome.errors)
            task.add_event(code, describe(code).lower(), details, error=True)
            return
        task.skipped_errors = list(outcome.skipped)
        task.subtasks_skipped_errors = len(outcome.skipped)
        task.subtasks_total = work
        task.subtasks_succeeded = work - len(outcome.skipped)
        task.subtasks_pending = 0
        task.subtasks_retrying = 0
        if outcome.skipped:
            task.add_event(
                "SKIPPED_ERRORS",
                "skipped errors",
                f"{len(outcome.skipped)} path(s) skipped because of source errors",
                error=False,
            )
        task.status = "SUCCEEDED"
        task.nice_status = None
        task.nice_status_details = None
        task.last_error = None
        task.completion_time = now
        task.add_event("SUCCEEDED", "succeeded", "", error=False)

    def _close(self, task: EmulatedTask, now: float) -> None:
        task.status = "FAILED"
        task.nice_status = None
        task.nice_status_details = None
        task.has_slot = False
        task.completion_time = now
        task.subtasks_total = max(task.subtasks_total, len(task.items))
        task.subtasks_retrying = 0

    def _expire(self, task: EmulatedTask, now: float) -> None:
        pending = task.subtasks_pending
        self._close(task, now)
        task.fatal_error = {"code": "EXPIRED", "description": "deadline expired"}
        task.subtasks_expired = pending
        task.subtasks_pending = 0
        task.add_event(
            "EXPIRED", "deadline expired", "Task failed to complete before deadline", error=True
        )

    def fail(self, task: EmulatedTask, code: str, description: str, *, now: float) -> None:
        pending = task.subtasks_pending
        self._close(task, now)
        task.fatal_error = {"code": code, "description": description}
        task.faults += 1
        task.subtasks_failed = max(pending, 1)
        task.subtasks_pending = 0
        task.add_event(code, description, description, error=True)

    def cancel(self, task: EmulatedTask, now: float) -> None:
        pending = task.subtasks_pending
        self._close(task, now)
        task.fatal_error = {"code": "CANCELED", "description": "canceled"}
        task.subtasks_canceled = pending
        task.subtasks_pending = 0
        task.add_event("CANCELED", "canceled", "Task canceled by its owner", error=False)

    # ----------------------------------------------------------------- HTTP

    def handle(self, req: Request, path: str, token: TokenRecord) -> Reply:
        parts = [p for p in path.split("/") if p]
        method = req.method
        if parts == ["submission_id"] and method == "GET":
            return self._submission_id(req)
        if parts in (["transfer"], ["delete"]) and method == "POST":
            return self._submit(req, token, parts[0])
        if parts == ["task_list"] and method == "GET":
            return self._task_list(req, token)
        if len(parts) == 2 and parts[0] == "task" and method in ("GET", "PUT"):
            return self._task(req, token, parts[1])
        if len(parts) == 3 and parts[0] == "task":
            task_id, action = parts[1], parts[2]
            if method == "POST" and action == "cancel":
                return self._cancel(req, token, task_id)
            if method == "GET" and action in ("successful_transfers", "skipped_errors"):
                return self._marker_list(req, token, task_id, action)
            if method == "GET" and action == "event_list":
                return self._event_list(req, token, task_id)
            if method == "GET" and action == "pause_info":
                return self._pause_info(req, token, task_id)
        if len(parts) == 2 and parts[0] == "endpoint" and method == "GET":
            return self._endpoint(req, parts[1])
        if len(parts) == 4 and parts[:2] == ["operation", "endpoint"]:
            collection_id, op = parts[2], parts[3]
            if method == "GET" and op == "ls":
                return self._ls(req, token, collection_id)
            if method == "GET" and op == "stat":
                return self._stat(req, token, collection_id)
            if method == "POST" and op == "mkdir":
                return self._mkdir(req, token, collection_id)
            if method == "POST" and op == "rename":
                return self._rename(req, token, collection_id)
        raise transfer_error(
            404, "ClientError.NotFound", f"No such resource: {method} /v0.10{path}", req.path
        )

    # ----------------------------------------------------------------- checks

    def _require_collection(self, collection_id: Any, resource: str) -> str:
        if not isinstance(collection_id, str) or collection_id not in self.roots:
            raise transfer_error(
                404, "EndpointNotFound", f"No such endpoint '{collection_id}'", resource
            )
        return collection_id

    def _check_consent(self, token: TokenRecord, collections: list[str], resource: str) -> None:
        missing: list[str] = []
        for collection_id in collections:
            scope = DATA_ACCESS_SCOPE.format(collection_id)
            if (
                collection_id in self.consent_required
                and scope not in token.dependencies
                and scope not in missing
            ):
                missing.append(scope)
        if not missing:
            return
        required = TRANSFER_SCOPE + "[" + " ".join("*" + s for s in missing) + "]"
        message = "Missing required data_access consent"
        raise HTTPError(
            403,
            {
                "code": "ConsentRequired",
                "message": message,
                "request_id": new_request_id(),
                "resource": resource,
                "required_scopes": [required],
                "authorization_parameters": {
                    "session_message": message,
                    "required_scopes": [required],
                },
            },
        )

    def _owned_task(self, req: Request, token: TokenRecord, task_id: str) -> EmulatedTask:
        task = self.tasks.get(task_id)
        if task is None or task.owner != token.identity_id:
            raise transfer_error(404, "ClientError.NotFound", f"Task {task_id} not found", req.path)
        return task

    # ----------------------------------------------------------------- submission

    def _submission_id(self, req: Request) -> Reply:
        value = str(uuid.uuid4())
        self.issued_submission_ids.add(value)
        return Reply(200, {"DATA_TYPE": "submission_id", "value": value})

    def _parse_items(self, doc: JSONDict, kind: str, resource: str) -> list[TaskItem]:
        raw_items = doc.get("DATA")
        if not isinstance(raw_items, list) or not raw_items:
            code = "ClientError.BadRequest.NoTransferItems"
            message = f"A {kind} requires at least one item"
            raise transfer_error(400, code, message, resource)
        items: list[TaskItem] = []
        for raw in raw_items:
            if not isinstance(raw, dict):
                raise transfer_error(400, "ClientError.BadRequest", "Invalid item", resource)
            if kind == "transfer":
                if raw.get("DATA_TYPE", "transfer_item") not in (
                    "transfer_item",
                    "transfer_symlink_item",
                ):
                    raise transfer_error(
                        400, "ClientError.BadRequest", "Invalid transfer item", resource
                    )
                src, dst = raw.get("source_path"), raw.get("destination_path")
                if not isinstance(src, str) or not isinstance(dst, str) or not src or not dst:
                    raise transfer_error(
                        400,
                        "ClientError.BadRequest",
                        "transfer_item requires source_path and destination_path",
                        resource,
                    )
                items.append(TaskItem(src, dst, _bool(raw.get("recursive"))))
            else:
                path = raw.get("path")
                if not isinstance(path, str) or not path:
                    raise transfer_error(
                        400, "ClientError.BadRequest", "delete_item requires path", resource
                    )
                items.append(TaskItem(path))
        return items

    def _parse_sync_level(self, value: Any, resource: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, str) and value in SYNC_LEVELS:
            return SYNC_LEVELS[value]
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
            return value
        raise transfer_error(
            400, "ClientError.BadRequest", f"Invalid sync_level {value!r}", resource
        )

    def _submit(self, req: Request, token: TokenRecord, kind: str) -> Reply:
        resource = f"/{kind}"
        doc = req.json()
        if doc.get("DATA_TYPE") != kind:
            raise transfer_error(
                400,
                "ClientError.BadRequest",
                f"Expected a document with DATA_TYPE '{kind}'",
                resource,
            )
        if kind == "transfer":
            source = self._require_collection(doc.get("source_endpoint"), resource)
            destination: str | None = self._require_collection(
                doc.get("destination_endpoint"), resource
            )
        else:
            source = self._require_collection(doc.get("endpoint"), resource)
            destination = None
        items = self._parse_items(doc, kind, resource)
        self._check_consent(token, [c for c in (source, destination) if c], resource)
        submission_id = doc.get("submission_id") or str(uuid.uuid4())
        if not isinstance(submission_id, str):
            raise transfer_error(400, "ClientError.BadRequest", "Invalid submission_id", resource)
        existing = self.by_submission.get(submission_id)
        if existing is not None:
            return Reply(
                200,
                self._submit_result(
                    kind,
                    "Duplicate",
                    f"A {kind} with submission id '{submission_id}' was already submitted",
                    existing,
                    submission_id,
                    resource,
                ),
            )
        sync_level = self._parse_sync_level(doc.get("sync_level"), resource)
        label = doc.get("label") if isinstance(doc.get("label"), str) else None
        self._check_label(label, resource)
        now = self.clock()
        deadline_raw = doc.get("deadline")
        try:
            deadline = parse_time(deadline_raw) if deadline_raw else now + DEFAULT_DEADLINE
        except (TypeError, ValueError) as err:
            raise transfer_error(
                400, "ClientError.BadRequest", f"Invalid deadline {deadline_raw!r}", resource
            ) from err
        filter_rules = doc.get("filter_rules")
        task = EmulatedTask(
            task_id=str(uuid.uuid4()),
            type=kind.upper(),
            owner=token.identity_id,
            username=token.username,
            submission_id=submission_id,
            label=label,
            source_endpoint_id=source,
            destination_endpoint_id=destination,
            items=items,
            request_time=now,
            deadline=deadline,
            user_deadline=bool(deadline_raw),
            clock=self.clock,
            sync_level=sync_level,
            verify_checksum=_bool(doc.get("verify_checksum")),
            preserve_timestamp=_bool(doc.get("preserve_timestamp")),
            skip_source_errors=_bool(doc.get("skip_source_errors")),
            fail_on_quota_errors=_bool(doc.get("fail_on_quota_errors")),
            encrypt_data=_bool(doc.get("encrypt_data")),
            delete_destination_extra=_bool(doc.get("delete_destination_extra")),
            recursive_delete=_bool(doc.get("recursive")),
            ignore_missing=_bool(doc.get("ignore_missing")),
            filter_rules=filter_rules if isinstance(filter_rules, list) else None,
            notify={k: _bool(v) for k, v in doc.items() if k.startswith("notify_on_")},
            document_fields=doc,
            subtasks_total=len(items),
            subtasks_pending=len(items),
        )
        if self.pending_failures:
            task.forced_failure = self.pending_failures.popleft()
        if self.pending_transients:
            task.transient = self.pending_transients.popleft()
        if self.pending_sticks:
            task.stuck_status = self.pending_sticks.popleft()
            task.nice_status = task.stuck_status
            task.nice_status_details = f"Injected by the emulator: {describe(task.stuck_status)}"
            task.faults += 1
            task.add_event(
                task.stuck_status,
                describe(task.stuck_status).lower(),
                task.nice_status_details,
                error=True,
            )
        self.tasks[task.task_id] = task
        self.by_submission[submission_id] = task.task_id
        self.submissions.append(submission_id)
        message = (
            f"The {kind} has been accepted and a task has been created and queued for execution"
        )
        return Reply(
            202,
            self._submit_result(kind, "Accepted", message, task.task_id, submission_id, resource),
        )

    def _check_label(self, label: str | None, resource: str) -> None:
        """With ``label_limit`` set: a longer label is refused. The limit is documented
        (https://docs.globus.org/cli/reference/labels/: "The maximum label length is 128
        characters"); the error code the service answers with is not: ClientError.BadRequest
        is this emulator's assumption."""
        if self.label_limit is not None and label is not None and len(label) > self.label_limit:
            raise transfer_error(
                400,
                "ClientError.BadRequest",
                f"Invalid label: longer than {self.label_limit} characters",
                resource,
            )

    @staticmethod
    def _submit_result(
        kind: str, code: str, message: str, task_id: str, submission_id: str, resource: str
    ) -> JSONDict:
        return {
            "DATA_TYPE": f"{kind}_result",
            "code": code,
            "message": message,
            "request_id": new_request_id(),
            "resource": resource,
            "submission_id": submission_id,
            "task_id": task_id,
            "task_link": {
                "DATA_TYPE": "link",
                "href": f"/v0.10/task/{task_id}?format=json",
                "rel": "related",
                "resource": "task",
                "title": "related task",
            },
        }

    # ----------------------------------------------------------------- tasks

    def _task(self, req: Request, token: TokenRecord, task_id: str) -> Reply:
        task = self._owned_task(req, token, task_id)
        if req.method == "PUT":
            doc = req.json()
            if "label" in doc:
                label = doc["label"] if isinstance(doc["label"], str) else None
                self._check_label(label, f"/task/{task_id}")
                task.label = label
            if doc.get("deadline"):
                try:
                    task.deadline = parse_time(str(doc["deadline"]))
                    task.user_deadline = True
                except ValueError as err:
                    raise transfer_error(
                        400, "ClientError.BadRequest", "Invalid deadline", req.path
                    ) from err
            return Reply(
                200,
                {
                    "DATA_TYPE": "result",
                    "code": "Updated",
                    "message": "Updated successfully",
                    "request_id": new_request_id(),
                    "resource": f"/task/{task_id}",
                },
            )
        return Reply(200, task.document(self.collection_docs))

    def _cancel(self, req: Request, token: TokenRecord, task_id: str) -> Reply:
        task = self._owned_task(req, token, task_id)
        resource = f"/task/{task_id}/cancel"
        if task.status not in ("ACTIVE", "INACTIVE"):
            return Reply(
                200,
                {
                    "DATA_TYPE": "result",
                    "code": "TaskComplete",
                    "message": f"Task {task_id} is already complete",
                    "request_id": new_request_id(),
                    "resource": resource,
                },
            )
        self.cancel(task, self.clock())
        return Reply(
            200,
            {
                "DATA_TYPE": "result",
                "code": "Canceled",
                "message": "The task has been cancelled successfully.",
                "request_id": new_request_id(),
                "resource": resource,
            },
        )

    def _matches_filter(self, task: EmulatedTask, clause: str) -> bool:
        name, _, value = clause.partition(":")
        values = [v for v in value.split(",") if v]
        if not values:
            return True
        if name == "task_id":
            return task.task_id in values
        if name == "type":
            return task.type in {v.upper() for v in values}
        if name == "status":
            return task.status in {v.upper() for v in values}
        if name == "label":
            label = task.label or ""
            for wanted in values:
                if wanted.startswith("~"):
                    if wanted[1:].lower() in label.lower():
                        return True
                elif wanted.endswith("*"):
                    if label.startswith(wanted[:-1]):
                        return True
                elif label == wanted:
                    return True
            return False
        if name == "request_time":
            start, _, end = value.partition(",")
            if start and task.request_time < parse_time(start):
                return False
            return not (end and task.request_time > parse_time(end))
        if name == "completion_time":
            if task.completion_time is None:
                return False
            start, _, end = value.partition(",")
            if start and task.completion_time < parse_time(start):
                return False
            return not (end and task.completion_time > parse_time(end))
        return True

    def _task_list(self, req: Request, token: TokenRecord) -> Reply:
        limit = _paging_number(req, "limit", 10, self.page_limit_cap)
        offset = _paging_number(req, "offset", 0)
        tasks = [t for t in self.tasks.values() if t.owner == token.identity_id]
        for raw in req.query.get("filter", []):
            for clause in raw.split("/"):
                try:
                    tasks = [t for t in tasks if self._matches_filter(t, clause)]
                except ValueError as err:
                    raise transfer_error(
                        400, "ClientError.BadRequest", f"Invalid filter {clause!r}", req.path
                    ) from err
        if self.list_order is not None and not req.arg("orderby"):
            order = self.list_order
            tasks.sort(key=lambda t: list_order_key(order, t.task_id, t.request_time))
            return self._task_page(tasks, limit, offset)
        orderby = (req.arg("orderby") or "request_time DESC").split(",")[0].split()
        field_name = orderby[0] if orderby else "request_time"
        descending = len(orderby) > 1 and orderby[1].upper() == "DESC"
        if field_name not in ("request_time", "completion_time", "label", "status", "task_id"):
            field_name = "request_time"

        sequence = {task_id: index for index, task_id in enumerate(self.tasks)}

        def sort_key(task: EmulatedTask) -> tuple[bool, Any, int]:
            value = getattr(task, field_name)
            return (value is None, value if value is not None else 0, sequence[task.task_id])

        tasks = sorted(tasks, key=sort_key, reverse=descending)
        return self._task_page(tasks, limit, offset)

    def _task_page(self, tasks: list[EmulatedTask], limit: int, offset: int) -> Reply:
        page = tasks[offset : offset + limit]
        return Reply(
            200,
            {
                "DATA_TYPE": "task_list",
                "DATA": [t.document(self.collection_docs) for t in page],
                "length": len(page),
                "limit": limit,
                "offset": offset,
                "total": len(tasks),
            },
        )

    def _marker_list(self, req: Request, token: TokenRecord, task_id: str, kind: str) -> Reply:
        task = self._owned_task(req, token, task_id)
        if task.type != "TRANSFER":
            raise transfer_error(
                400, "ClientError.BadRequest", f"Task {task_id} is not a transfer", req.path
            )
        entries = (
            task.successful_transfers if kind == "successful_transfers" else (task.skipped_errors)
        )
        raw = req.arg("marker")
        try:
            start = int(raw) if raw else 0
        except ValueError as err:
            raise transfer_error(
                400, "ClientError.BadRequest", f"Invalid marker {raw!r}", req.path
            ) from err
        size = max(1, self.marker_page_size)
        page = entries[start : start + size]
        # an int, as recorded (globus_sdk.testing: endpoint_manager_task_successful_transfers)
        next_marker = start + size if start + size < len(entries) else None
        return Reply(
            200,
            {
                "DATA_TYPE": kind,
                "marker": start,
                "next_marker": next_marker,
                "DATA": page,
            },
        )

    def _event_list(self, req: Request, token: TokenRecord, task_id: str) -> Reply:
        task = self._owned_task(req, token, task_id)
        limit = _paging_number(req, "limit", 10, self.page_limit_cap)
        offset = _paging_number(req, "offset", 0)
        events = list(reversed(task.events))
        for raw in req.query.get("filter", []):
            if raw.startswith("is_error:"):
                wanted = raw.split(":", 1)[1] in ("1", "true", "True")
                events = [e for e in events if e["is_error"] == wanted]
        page = events[offset : offset + limit]
        return Reply(
            200,
            {
                "DATA_TYPE": "event_list",
                "DATA": page,
                "length": len(page),
                "limit": limit,
                "offset": offset,
                "total": len(events),
            },
        )

    def _pause_info(self, req: Request, token: TokenRecord, task_id: str) -> Reply:
        task = self._owned_task(req, token, task_id)
        paused = task.paused and task.paused_at is not None
        rules = [pause_rule(task.source_endpoint_id, task.pause_message, task.paused_at or 0.0)]
        return Reply(
            200,
            {
                "DATA_TYPE": "pause_info_limited",
                "pause_rules": rules if paused else [],
                "source_pause_message": task.pause_message if paused else None,
                "destination_pause_message": None,
            },
        )

    # ----------------------------------------------------------------- endpoints & files

    def _endpoint(self, req: Request, collection_id: str) -> Reply:
        self._require_collection(collection_id, f"/endpoint/{collection_id}")
        return Reply(200, dict(self.collection_docs[collection_id]))

    def _path_arg(self, req: Request, default: str | None) -> str:
        value = req.arg("path", default)
        if value is None:
            raise transfer_error(400, "ClientError.BadRequest", "path is required", req.path)
        return value

    def _ls(self, req: Request, token: TokenRecord, collection_id: str) -> Reply:
        resource = f"/operation/endpoint/{collection_id}/ls"
        self._require_collection(collection_id, resource)
        self._check_consent(token, [collection_id], resource)
        gpath = self._path_arg(req, "/~/")
        local = globus_to_local(self.roots[collection_id], gpath)
        shown = display_dir(gpath)
        self._unambiguous(collection_id, local, gpath, resource)
        if self.gcp_down(collection_id) == "GC_NOT_CONNECTED":
            # the code is this emulator's assumption: an ExternalError naming the cause
            raise transfer_error(
                502,
                "ExternalError.DirListingFailed.GCDisconnected",
                f"Directory listing failed: Globus Connect Personal endpoint {collection_id} "
                "is not currently connected",
                resource,
            )
        refused = self.refused_paths.get((collection_id, local))
        if refused is not None:
            status, code = refused
            raise transfer_error(status, code, f"Invalid path '{shown}'", resource)
        if (collection_id, local) in self.denied:
            raise transfer_error(
                403,
                "PermissionDenied",
                f"Permission denied, Error (list)\nMessage: '{shown}': Permission denied",
                resource,
            )
        if not local.exists():
            raise transfer_error(
                404,
                "ClientError.NotFound",
                f"Directory '{shown}' not found on endpoint {collection_id}",
                resource,
            )
        if not local.is_dir():
            raise transfer_error(
                502,
                "ExternalError.DirListingFailed.NotDirectory",
                f"Directory listing failed: '{shown}' is not a directory",
                resource,
            )
        show_hidden = (req.arg("show_hidden") or "1").lower() not in ("0", "false")
        drive = self.drives.get(collection_id)
        entries = list(list_entries(local, show_hidden, drive))
        entries = apply_filters(entries, list(req.query.get("filter", [])), resource)
        total = len(entries)
        offset = _paging_number(req, "offset", 0)
        limit = _paging_number(req, "limit", 100000, self.ls_limit_cap)
        page = entries[offset : offset + limit]
        # the keys of the service's answer, as recorded verbatim in globus-cli's
        # tests/files/api_fixtures/ls_results.yaml: no "limit", no "offset"
        doc: JSONDict = {
            "DATA_TYPE": "file_list",
            "DATA": page,
            "path": shown,
            "absolute_path": shown,
            "endpoint": collection_id,
            "length": len(page),
            "total": total,
            "rename_supported": True,
            "symlink_supported": False,
        }
        if self.ls_limit_key:
            doc.update(limit=limit, offset=offset)
        return Reply(200, doc)

    def _stat(self, req: Request, token: TokenRecord, collection_id: str) -> Reply:
        resource = f"/operation/endpoint/{collection_id}/stat"
        self._require_collection(collection_id, resource)
        self._check_consent(token, [collection_id], resource)
        gpath = self._path_arg(req, None)
        local = globus_to_local(self.roots[collection_id], gpath)
        self._unambiguous(collection_id, local, gpath, resource)
        if not local.exists():
            raise transfer_error(
                404,
                "NotFound",
                f"Path not found, Error (stat)\nEndpoint: "
                f"{self.collection_docs[collection_id]['display_name']} ({collection_id})\n"
                f"Message: No such file or directory\n---\nDetails: Error: '{gpath}' not found",
                resource,
            )
        name = local.name if local != self.roots[collection_id] else "/"
        return Reply(200, file_document(local, name))

    def _unambiguous(self, collection_id: str, local: Path, gpath: str, resource: str) -> None:
        """On a Google-Drive-like collection, a path through a name two entries share."""
        drive = self.drives.get(collection_id)
        name = drive.ambiguous(local) if drive is not None else None
        if name is not None:
            raise transfer_error(
                502,
                "ExternalError.AMBIGUOUS_PATH",
                f"AMBIGUOUS_PATH: more than one entry named '{name}' in the path '{gpath}'",
                resource,
            )

    def _mkdir(self, req: Request, token: TokenRecord, collection_id: str) -> Reply:
        resource = f"/operation/endpoint/{collection_id}/mkdir"
        self._require_collection(collection_id, resource)
        doc = req.json()
        gpath = doc.get("path")
        if doc.get("DATA_TYPE", "mkdir") != "mkdir" or not isinstance(gpath, str) or not gpath:
            raise transfer_error(
                400, "ClientError.BadRequest", "A mkdir document with a path is required", resource
            )
        self._check_consent(token, [collection_id], resource)
        local = globus_to_local(self.roots[collection_id], gpath)
        shown = display_dir(gpath)
        if local.exists() or local == self.roots[collection_id]:
            raise transfer_error(
                502,
                "ExternalError.MkdirFailed.Exists",
                f"Path already exists, Error Path '{shown}' already exists\n",
                resource,
            )
        if not local.parent.is_dir():
            raise transfer_error(
                404,
                "ClientError.NotFound",
                f"Directory '{display_dir(posixpath.dirname(shown.rstrip('/')))}' not found, "
                f"Error (mkdir)\nMessage: No such file or directory",
                resource,
            )
        try:
            local.mkdir()
        except PermissionError as err:
            raise transfer_error(
                502,
                "ExternalError.MkdirFailed.PermissionDenied",
                f"Permission denied, Error (mkdir) {err.strerror}",
                resource,
            ) from err
        return Reply(
            202,
            {
                "DATA_TYPE": "mkdir_result",
                "code": "DirectoryCreated",
                "message": "The directory was created successfully",
                "request_id": new_request_id(),
                "resource": resource,
            },
        )

    def _rename(self, req: Request, token: TokenRecord, collection_id: str) -> Reply:
        resource = f"/operation/endpoint/{collection_id}/rename"
        self._require_collection(collection_id, resource)
        doc = req.json()
        old_path, new_path = doc.get("old_path"), doc.get("new_path")
        if not isinstance(old_path, str) or not isinstance(new_path, str):
            raise transfer_error(
                400, "ClientError.BadRequest", "old_path and new_path are required", resource
            )
        self._check_consent(token, [collection_id], resource)
        root = self.roots[collection_id]
        source, target = globus_to_local(root, old_path), globus_to_local(root, new_path)
        if not source.exists():
            raise transfer_error(
                404, "ClientError.NotFound", f"Path '{old_path}' not found", resource
            )
        if target.exists():
            raise transfer_error(
                502,
                "ExternalError.RenameFailed.Exists",
                f"Path '{new_path}' already exists",
                resource,
            )
        try:
            source.rename(target)
        except OSError as err:
            raise transfer_error(
                502, "ExternalError.RenameFailed", f"Rename failed: {err.strerror}", resource
            ) from err
        return Reply(
            200,
            {
                "DATA_TYPE": "result",
                "code": "FileRenamed",
                "message": "File or directory renamed successfully",
                "request_id": new_request_id(),
                "resource": resource,
            },
        )

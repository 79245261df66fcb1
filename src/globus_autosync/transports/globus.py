"""The Globus transport: one transfer task per batch, through globus-sdk.

The SDK does the auth flows, token refresh, retries of 429/5xx and paging; this module maps a
batch onto a TransferData document and a task onto per-file outcomes. The client, its error
mapping, the paged listing and the collections' documents are globus/'s, shared with a source
listed through Globus.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import globus_sdk
from globus_sdk import MISSING, MissingType

from globus_autosync.config import Config, Job
from globus_autosync.errors import AuthError, TransportError
from globus_autosync.globus import auth as globus_auth
from globus_autosync.globus import collections as globus_collections
from globus_autosync.globus.client import Pace, TransferSession
from globus_autosync.globus.collections import CollectionDoc
from globus_autosync.globus.errors import ConsentNeeded, Purged, consent_message, purged, refused
from globus_autosync.globus.listing import Unlistable, Vanished, list_entries, missing, unlistable
from globus_autosync.store.heartbeats import DESTINATION
from globus_autosync.transports.base import (
    DONE,
    RETRY,
    SKIP,
    Check,
    Copy,
    Held,
    Item,
    Outcome,
    TaskReport,
)
from globus_autosync.transports.task_outcomes import (
    LASTING_NICE_STATUS,
    task_failure,
    up_to_date,
)

log = logging.getLogger(__name__)

SYNC_LEVELS = {"exists": 0, "size": 1, "mtime": 2, "checksum": 3}
# The Transfer service takes a label of at most 128 characters
# (https://docs.globus.org/cli/reference/labels/: "The maximum label length is 128").
LABEL_MAX = 128
# an ACTIVE task showing one of these waits for a collection to come back (endpoints.py says so)
COLLECTION_FAULTS = {"GC_NOT_CONNECTED", "GC_PAUSED", "CONNECT_FAILED", "ENDPOINT_ERROR"}


class GlobusTransport:
    name = "globus"
    synchronous = False

    def __init__(self, job: Job, config: Config, state_dir: Path) -> None:
        assert job.globus.source_collection and job.globus.destination_collection
        self.job, self.config, self.state_dir = job, config, state_dir
        self.src, self.dst = job.globus.source_collection, job.globus.destination_collection
        self.max_active = job.globus.max_active_tasks
        self.src_root = job.globus.source_collection_path or str(job.source)
        self.session = TransferSession(job, config, state_dir)  # a Globus source lists with it
        self._made: set[str] = set()
        self.task_faults: dict[str, str] = {}  # task id -> a COLLECTION_FAULTS nice_status
        self._pace: Pace | None = None  # the pace of verify's listings, made at the first

    # -- plumbing -------------------------------------------------------------------------
    @property
    def tc(self) -> globus_sdk.TransferClient:
        return self.session.tc

    def src_path(self, relpath: str) -> str:
        return _join(self.src_root, relpath)

    def dst_path(self, relpath: str) -> str:
        return _join(self.job.destination, relpath)

    # -- the Transport protocol -----------------------------------------------------------
    def ready(self) -> None:
        self.session.call("credentials", lambda: self.tc)

    def new_submission_id(self) -> str:
        return str(
            self.session.call("get a submission id", lambda: self.tc.get_submission_id()["value"])
        )

    def submit(self, submission_id: str, label: str, items: Sequence[Item]) -> str:
        # No deadline unless the job sets one: "If a deadline is not specified, the task's
        # deadline will be extended as long as the task is making progress" (72 h after its
        # last progress; docs.globus.org/guides/overviews/task_behavior/#deadlines). A fixed
        # one would expire a first-day backlog on a slow link and send it again and again.
        deadline: str | MissingType = MISSING
        if self.job.globus.task_deadline is not None:
            at = datetime.fromtimestamp(time.time() + self.job.globus.task_deadline, UTC)
            deadline = at.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        data = globus_sdk.TransferData(
            source_endpoint=self.src,
            destination_endpoint=self.dst,
            label=label[:LABEL_MAX],
            submission_id=submission_id,
            sync_level=SYNC_LEVELS[self.job.globus.sync_level],
            verify_checksum=self.job.globus.verify_checksum,
            preserve_timestamp=self.job.globus.preserve_timestamp,
            skip_source_errors=True,
            fail_on_quota_errors=True,
            deadline=deadline,
            notify_on_succeeded=self.job.globus.email_notifications,
            notify_on_failed=self.job.globus.email_notifications,
            notify_on_inactive=self.job.globus.email_notifications,
        )
        for item in items:
            data.add_item(self.src_path(item.relpath), self.dst_path(item.relpath))
        result = self.session.call(
            "submit a transfer", lambda: self.tc.submit_transfer(data), refused()
        )
        return str(result["task_id"])

    def poll(self, task_id: str, items: Sequence[Item], submitted_at: float) -> TaskReport:
        try:
            task = self.session.call(
                f"look at task {task_id}", lambda: self.tc.get_task(task_id), purged(task_id)
            )
        except Purged:
            # Globus keeps a task's record for a limited time; a task it has forgotten will
            # never answer again. Its files are looked at anew (those already at the
            # destination are found up to date by Globus, not copied twice).
            why = (
                f"Globus no longer knows task {task_id} (its record was purged): its files are "
                "listed and sent again"
            )
            return TaskReport(True, {i.relpath: Outcome(RETRY, why) for i in items}, why, "FAILED")
        status, nice = task["status"], task.get("nice_status")
        if status == "ACTIVE" and nice in COLLECTION_FAULTS:
            self.task_faults[task_id] = nice
        else:
            self.task_faults.pop(task_id, None)
        if status == "SUCCEEDED":
            outcomes = {i.relpath: Outcome(DONE) for i in items}
            outcomes.update(self._skipped(task_id))
            return TaskReport(True, outcomes, state=status)
        if status == "FAILED":
            return self._ended_badly(task_id, task_failure(task), items, task)
        if status == "INACTIVE":
            why = (
                f"task {task_id} is INACTIVE{f' ({nice})' if nice else ''}: the credentials or "
                "consent of a collection expired; renew them (run 'globus-autosync login' and "
                f"'globus-autosync check', or see {self.task_url(task_id)}) and it resumes"
            )
            return TaskReport(False, reason=why, state=status)
        if task.get("is_paused"):
            # an administrator's pause rule on a collection: no work is done until it is lifted
            why = (
                f"task {task_id} is paused by an administrator of a collection: it resumes "
                "when the pause is lifted; ask the collection's administrator "
                f"({self.task_url(task_id)})"
            )
            return TaskReport(False, reason=why, state=f"{status} (paused)")
        if nice in LASTING_NICE_STATUS:
            details = task.get("nice_status_short_description") or nice
            why = (
                f"task {task_id} keeps failing with {nice} ({details}); Globus retries it until "
                f"its deadline: {LASTING_NICE_STATUS[nice]} ({self.task_url(task_id)})"
            )
            return TaskReport(False, reason=why, state=f"{status} ({nice})")
        return TaskReport(False, state=f"{status} ({nice})" if nice else status)

    def _ended_badly(
        self, task_id: str, reason: str, items: Sequence[Item], task: Any
    ) -> TaskReport:
        """A failed task: what it did transfer is confirmed, the rest is retried."""
        outcomes: dict[str, Outcome] = {}

        def successes() -> None:
            for t in self.tc.paginated.task_successful_transfers(task_id).items():
                outcomes[self._rel(t["source_path"])] = Outcome(DONE)

        self.session.call(f"list what task {task_id} transferred", successes)
        outcomes.update(self._skipped(task_id))
        if int(task.get("files_skipped") or 0):
            # files Globus found up to date (sync_level) are in neither list
            left = [i for i in items if i.relpath not in outcomes]
            outcomes.update(up_to_date(self.session, self.dst, self.dst_path, self.job, left))
        return TaskReport(True, outcomes, reason=reason, state="FAILED")

    def _skipped(self, task_id: str) -> dict[str, Outcome]:
        out: dict[str, Outcome] = {}

        def collect() -> None:
            for e in self.tc.paginated.task_skipped_errors(task_id).items():
                why = f"Globus skipped it: {e.get('error_code')}"
                if e.get("error_details"):
                    why += f": {str(e['error_details']).strip().splitlines()[0]}"
                out[self._rel(e["source_path"])] = Outcome(SKIP, why)

        self.session.call(f"list what task {task_id} skipped", collect)
        return out

    def _rel(self, source_path: str) -> str:
        root = self.src_root.rstrip("/") + "/"
        return source_path[len(root) :] if source_path.startswith(root) else source_path

    def mkdirs(self, relpaths: Sequence[str]) -> dict[str, str]:
        errors: dict[str, str] = {}
        for rel in relpaths:
            parts = rel.split("/") if rel else []
            try:
                for depth in range(len(parts) + 1):
                    self._mkdir(self.dst_path("/".join(parts[:depth])))
            except TransportError as err:
                errors[rel] = str(err)
        return errors

    def _mkdir(self, path: str) -> None:
        if path in self._made:
            return

        def make() -> None:
            try:
                self.tc.operation_mkdir(self.dst, path)
            except globus_sdk.TransferAPIError as err:
                if not (err.http_status == 502 and "Exists" in str(err.code)):
                    raise

        # through the session: a service account asks for a consent it lacks, as for a submission
        self.session.call(f"make directory {path}", make)
        self._made.add(path)

    def task_url(self, task_id: str) -> str | None:
        return f"https://app.globus.org/activity/{task_id}"

    def verify_copies(self, reldir: str, names: Sequence[str]) -> dict[str, Copy]:
        """One listing of the destination directory (paged), the sizes of the files named."""
        path = self.dst_path(reldir)
        wanted = set(names)
        found: dict[str, Copy] = {}
        what = f"list {path} on the destination"
        try:
            entries = list_entries(
                self.session, self.dst, path, what, missing(path), side=DESTINATION
            )
        except Vanished:
            return found  # the directory is not there: neither is any file in it
        for entry in entries:
            if entry.get("type") == "file" and entry.get("name") in wanted:
                found[entry["name"]] = Copy(int(entry["size"]), None)
        return found

    def held(self, reldir: str) -> Held:
        """One listing of the destination directory (paged): its files' sizes (Globus lists
        times to the second: not compared)."""
        path = self.dst_path(reldir)
        what = f"list {path} on the destination"
        if self._pace is None:  # the job's requests_per_second, as the source's listing
            self._pace = Pace(self.job.requests_per_second)
        try:
            entries = list_entries(
                self.session,
                self.dst,
                path,
                what,
                missing(path),
                before=self._pace.wait,
                side=DESTINATION,
            )
        except Vanished:
            return {}
        return {e["name"]: Copy(int(e["size"]), None) for e in entries if e.get("type") == "file"}

    def close(self) -> None:
        self.session.close()

    # -- check ----------------------------------------------------------------------------
    def checks(self) -> list[Check]:
        try:
            # a request that needs a valid token: a refused secret or a dead login shows here
            self.session.call("credentials", lambda: self.tc.task_list(limit=1))
        except (AuthError, TransportError) as err:
            return [Check("credentials", False, str(err))]
        who = "the service account's" if globus_auth.is_service_account() else "your Globus"
        out = [Check("credentials", True, f"{who} credentials are valid")]
        for role, cid in (("source collection", self.src), ("destination collection", self.dst)):
            try:
                doc = globus_collections.endpoint(self.session, role, cid)
                name = doc.get("display_name")
                if doc.get("gcp_connected") is False or doc.get("gcp_paused"):
                    what = "paused" if doc.get("gcp_paused") else "not connected"
                    verb = "resume" if doc.get("gcp_paused") else "start"
                    text = f"{cid} ({name}): Globus Connect Personal is {what}"
                    todo = f"{verb} Globus Connect Personal on {name}"
                    out.append(Check(role, False, f"{text}; {todo}"))
                    continue
                out.append(Check(role, True, f"{cid} ({name}) answers"))
            except (AuthError, TransportError) as err:
                out.append(Check(role, False, f"{err}; check the collection id in the config"))
        if not all(c.ok for c in out):
            return out
        out.append(self._consent())
        if not out[-1].ok:
            return out  # every later line would fail for the same reason
        out.append(self._source_listing())
        out.append(self._probe())
        return out

    def _source_listing(self) -> Check:
        """The source path lists; for a source listed through Globus (scan = "globus"), the
        whole top directory, and how many entries it holds."""
        try:
            if self.job.scan != "globus":
                self.session.call(
                    "list the source",
                    lambda: self.tc.operation_ls(self.src, path=self.src_root, limit=1),
                )
                return Check("source path", True, f"{self.src_root} lists on the source collection")
            what = f"list {self.src_root} on the source"
            try:
                hook = unlistable(self.src_root)
                n = len(list_entries(self.session, self.src, self.src_root, what, hook))
            except Vanished:
                return Check(
                    "source path",
                    False,
                    f"{self.src_root} is not a directory on the "
                    "source collection; check the 'source' key",
                )
            except Unlistable as err:
                return Check("source path", False, f"{self.src_root} cannot be listed: {err}")
            pace = f"at most {self.job.requests_per_second:g} requests a second"
            text = f"{self.src_root} lists on the source collection: {n} entries in the top "
            text += f"directory (every directory is listed each cycle, {pace})"
            return Check("source path", True, text)
        except (AuthError, TransportError) as err:
            return Check("source path", False, str(err))

    def collections(self) -> list[CollectionDoc]:
        return globus_collections.collection_docs(self.session, self.src, self.dst)

    def _consent(self) -> Check:
        """Data access to both collections. Globus checks the consent before it looks at a
        path, so any other answer to a stat (a destination not made yet) means it is there."""
        needed: list[str] = []
        refused: list[str] = []
        for cid, path in ((self.src, self.src_root), (self.dst, self.job.destination)):
            try:
                self.session.call(
                    f"data access to {cid}", partial(self.tc.operation_stat, cid, path)
                )
            except ConsentNeeded as err:
                needed += [c for c in err.collections or [cid] if c not in needed]
            except AuthError as err:
                refused.append(str(err))
            except TransportError:
                pass  # past the consent check; the path lines say what is wrong with the path
        if needed:
            return Check("consent", False, consent_message("", needed))
        if refused:
            return Check("consent", False, "; ".join(refused))
        return Check("consent", True, "data access to both collections is granted (or not needed)")

    def _probe(self) -> Check:
        probe = self.dst_path(f".globus-autosync-probe-{uuid.uuid4().hex[:12]}")
        try:
            if self.job.destination != "/":
                self._mkdir(self.job.destination)  # the first run makes it anyway
            self.session.call(
                "make a probe directory", lambda: self.tc.operation_mkdir(self.dst, probe)
            )
        except (AuthError, TransportError) as err:
            return Check(
                "destination path", False, f"{self.job.destination} is not writable: {err}"
            )
        label = f"AUTO_{self.job.name[:100]}_probe"
        delete = globus_sdk.DeleteData(endpoint=self.dst, recursive=True, label=label)
        delete.add_item(probe)
        try:
            task = self.session.call(
                "delete the probe directory", lambda: self.tc.submit_delete(delete)
            )
            done = self.session.call(
                "wait for the probe's deletion",
                lambda: self.tc.task_wait(task["task_id"], timeout=30, polling_interval=1),
            )
        except (AuthError, TransportError) as err:
            return Check("destination path", False, f"probe {probe} made but not deleted: {err}")
        detail = f"{self.job.destination} is writable (probe made and deleted)"
        if not done:
            detail += f"; the probe's deletion is still running: {probe}"
        return Check("destination path", True, detail)


def _join(root: str, relpath: str) -> str:
    root = root.rstrip("/")
    return f"{root}/{relpath}" if relpath else (root or "/")

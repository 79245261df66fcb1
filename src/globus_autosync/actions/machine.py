"""Actions: when data is confirmed, start the analysis: a Globus Flow run and/or a local command,
once per finished batch (``on_done = "batch"``) or dataset (``"dataset"``), exactly once.

The order is record -> act: the action is journaled in the transaction that confirms its files
(``on_resolved``); a cycle then finishes the datasets that are quiet (or whose marker is
confirmed) and moves each open action on (``run``): start what is pending, find again what a
crash left ``starting``, look at what runs. A failed start (a 5xx, the network) is tried again
with the backoff of files; a run or command that failed stays failed until ``retry-action``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from globus_autosync.actions import commands
from globus_autosync.config import Job
from globus_autosync.errors import AuthError, TransportError
from globus_autosync.model.crashpoint import crashpoint
from globus_autosync.model.plan import backoff
from globus_autosync.sources.base import join
from globus_autosync.sources.context import CycleContext
from globus_autosync.store import ActionRow, QueuedFile
from globus_autosync.store.actions import (
    ACTION_FAILED,
    PENDING,
    RUNNING,
    STARTING,
    SUCCEEDED,
    ActionRecord,
    ConfirmedFile,
)

if TYPE_CHECKING:
    from globus_autosync.globus.flows import FlowRunner

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ActResult:
    started: int = 0
    failed: int = 0
    waiting: int = 0  # flow runs INACTIVE: someone must act
    problem: str | None = None  # a start failed for now (tried again later)
    auth: AuthError | None = None  # a login or a consent is missing: the run ends with it


def label(job: Job, row: ActionRow) -> str:
    return f"AUTO_{job.name}_{row.kind}_{row.id}"


class Actions:
    """The actions of one job in one cycle."""

    def __init__(self, ctx: CycleContext) -> None:
        job = ctx.job
        self.job, self.config, self.store, self.job_id = job, ctx.config, ctx.store, ctx.job_id
        self.rel, self.state_dir = ctx.tree.rel, ctx.state_dir
        self.legs = (job.actions.flow is not None, bool(job.actions.command))
        self._runner: FlowRunner | None = None
        self.result = ActResult()

    # -- record (written by the store in the transaction that confirms the files) -----------
    def action_record(self, done: Sequence[QueuedFile]) -> ActionRecord:
        """What the actions of a batch's confirmed files are to record."""
        rel = self.rel
        files = [
            ConfirmedFile(
                f.dir, f.row.name, f.row.size, f.row.mtime_ns, join(rel.get(f.dir, ""), f.row.name)
            )
            for f in done
        ]
        per_batch = self.job.actions.on_done == "batch"
        return ActionRecord(files, per_batch, self.legs, self.job.actions.dataset_marker, rel)

    # -- act --------------------------------------------------------------------------------
    def run(self, should_stop: Callable[[], bool]) -> ActResult:
        now = time.time()
        for row in self.store.actions.collecting(self.job_id):
            due = row.marker or now - row.changed >= self.job.actions.dataset_quiet
            if due and row.dir is not None and not self.store.actions.dataset_blockers(row.dir, 1):
                self.store.actions.finish_dataset(row.id, self.legs, now)
                why = "its marker is confirmed" if row.marker else "it is quiet"
                log.info(
                    "%s: dataset %s finished (%s): action %d, %d files",
                    self.job.name,
                    row.dataset or ".",
                    why,
                    row.id,
                    row.files,
                )
        seen: set[int] = set()
        while not should_stop():  # again for the parts a split makes
            rows = [r for r in self.store.actions.active(self.job_id) if r.id not in seen]
            if not rows:
                break
            for row in rows:
                if should_stop():
                    break
                seen.add(row.id)
                self._move(row)
        return self.result

    def _move(self, row: ActionRow) -> None:
        # a missing login or consent stops the flows, not the commands; the run ends with it
        if (
            row.flow_state is not None
            and self.job.actions.flow is not None
            and self.result.auth is None
        ):
            try:
                row = self._flow(row)
            except AuthError as err:
                self.result.auth = err
        if row.cmd_state is not None and self.job.actions.command:
            row = self._command(row)

    def _backoff(self, row: ActionRow, message: str) -> None:
        tries = row.tries + 1
        self.store.actions.note(
            row.id, tries=tries, next_try=time.time() + backoff(tries), reason=message
        )
        log.warning("%s: action %d: %s; tried again later", self.job.name, row.id, message)
        self.result.problem = message

    def _ended(
        self, row: ActionRow, leg: str, state: str, reason: str | None, **cols: object
    ) -> ActionRow:
        other = row.cmd_state if leg == "flow" else row.flow_state
        if not (state == SUCCEEDED and other == ACTION_FAILED):  # keep why the other one failed
            cols["reason"] = reason
        new = self.store.actions.update_leg(row.id, leg, state, **cols)
        if state == SUCCEEDED:
            log.info(
                "%s: action %d (%s): %s succeeded",
                self.job.name,
                row.id,
                label(self.job, row),
                "flow run" if leg == "flow" else "command",
            )
        else:
            self.result.failed += 1
            log.warning(
                "%s: action %d (%s) failed: %s; start it again with: globus-autosync "
                "retry-action %d",
                self.job.name,
                row.id,
                label(self.job, row),
                reason,
                row.id,
            )
        return new

    # -- the manifest -----------------------------------------------------------------------
    def manifest(self, row: ActionRow, files: Sequence[ConfirmedFile]) -> dict[str, Any]:
        job = self.job
        globus = job.transport == "globus"
        src_root = (
            (job.globus.source_collection_path or str(job.source)) if globus else str(job.source)
        )
        doc: dict[str, Any] = {
            "job": job.name,
            "kind": row.kind,
            "id": row.id,
            "label": label(job, row),
            "part": row.part,
            "parts": row.parts,
            "batch": row.batch,
            "dataset": row.dataset,
            "source": {
                "collection": job.globus.source_collection if globus else None,
                "root": src_root,
            },
            "destination": {
                "collection": job.globus.destination_collection if globus else None,
                "root": job.destination,
            },
            "files": [],
        }
        for _, _, size, mtime_ns, relpath in files:
            doc["files"].append(
                {
                    "path": relpath,
                    "source": _under(src_root, relpath),
                    "destination": _under(job.destination, relpath),
                    "size": size,
                    "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime_ns / 1e9)),
                    "mtime_ns": mtime_ns,
                }
            )
        return doc

    def flow_body(self, manifest: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.job.actions.flow_input)
        body["autosync"] = manifest
        return body

    # -- the flow leg -----------------------------------------------------------------------
    @property
    def runner(self) -> FlowRunner:
        if self._runner is None:
            from globus_autosync.globus.flows import FlowRunner  # here: globus_sdk, 25 ms

            self._runner = FlowRunner(self.job, self.config, self.state_dir)
        return self._runner

    def _flow(self, row: ActionRow) -> ActionRow:
        from globus_autosync.globus import flows  # here: globus_sdk costs a run 25 ms

        state = row.flow_state
        if state in (PENDING, STARTING) and row.next_try > time.time():
            return row
        try:
            if state == STARTING and row.run_id is None:
                found = self.runner.find(row.tag)  # a crash, or a start that failed: look first
                if found is not None:
                    log.info(
                        "%s: action %d: found run %s started before",
                        self.job.name,
                        row.id,
                        found.get("run_id"),
                    )
                    return self.store.actions.update_leg(
                        row.id, "flow", RUNNING, run_id=str(found["run_id"])
                    )
                state = PENDING
            if state == PENDING:
                return self._start_flow(row)
            if state == RUNNING and row.run_id:
                return self._poll_flow(row, row.run_id, flows.run_url(row.run_id))
        except TransportError as err:
            self._backoff(row, str(err))
        return row

    def _start_flow(self, row: ActionRow) -> ActionRow:
        from globus_autosync.globus import flows  # here: globus_sdk costs a run 25 ms

        files = self.store.actions.files(row.id)
        body = self.flow_body(self.manifest(row, files))
        if len(json.dumps(body)) > flows.INPUT_LIMIT and len(files) > 1 and row.parts == 1:
            groups = split(files, len(json.dumps(body)), flows.INPUT_LIMIT)
            self.store.actions.split(row, groups)
            log.info(
                "%s: action %d: its manifest is larger than a flow run takes; split into %d runs",
                self.job.name,
                row.id,
                len(groups),
            )
            row = self.store.actions.get(row.id) or row
            files = self.store.actions.files(row.id)
            body = self.flow_body(self.manifest(row, files))
        row = self.store.actions.update_leg(
            row.id, "flow", STARTING, started=time.time()
        )  # journaled
        crashpoint("action-flow-journaled")
        tags = ["globus-autosync", f"job:{self.job.name}", row.tag]
        run_id = self.runner.start(body, label(self.job, row), tags)
        crashpoint("action-flow-started")
        self.result.started += 1
        log.info(
            "%s: action %d: flow run %s started (%d files): %s",
            self.job.name,
            row.id,
            run_id,
            len(files),
            flows.run_url(run_id),
        )
        return self.store.actions.update_leg(row.id, "flow", RUNNING, run_id=run_id, tries=0)

    def _poll_flow(self, row: ActionRow, run_id: str, url: str) -> ActionRow:
        from globus_autosync.globus import flows  # here: globus_sdk costs a run 25 ms
        from globus_autosync.globus.errors import Purged

        try:
            run = self.runner.get(run_id)
        except Purged:  # a 404: asking again will never answer
            why = (
                f"Globus Flows no longer has run {run_id} (it deletes a run 90 days after it "
                "ends): what became of it is unknown"
            )
            return self._ended(row, "flow", ACTION_FAILED, why)
        status = run.get("status")
        if status == "SUCCEEDED":
            return self._ended(row, "flow", SUCCEEDED, None)
        if status in ("FAILED", "ENDED"):
            return self._ended(row, "flow", ACTION_FAILED, flows.run_failure(run))
        reason = None
        if status == "INACTIVE":
            self.result.waiting += 1
            reason = (
                f"flow run {run_id} is INACTIVE: it waits for a consent or for someone; "
                f"see {url}, do what it asks there, and it resumes"
            )
        if reason != row.reason:  # said once, kept for `status`
            if reason is not None:
                log.warning("%s: action %d: %s", self.job.name, row.id, reason)
            else:
                log.info("%s: action %d: run %s is under way again", self.job.name, row.id, run_id)
            self.store.actions.note(row.id, reason=reason)
        return row

    # -- the command leg --------------------------------------------------------------------
    def _command(self, row: ActionRow) -> ActionRow:
        top = commands.attempt_dir(self.state_dir, row.id, row.attempt)
        state = row.cmd_state
        if state == STARTING and commands.begun(top):
            row = self.store.actions.update_leg(row.id, "cmd", RUNNING)
            state = RUNNING
        if state in (PENDING, STARTING):
            if row.next_try > time.time():
                return row
            return self._start_command(row, top)
        if state == RUNNING:
            ended = commands.poll(top, row.started)
            if ended is None:
                return row
            self._log_output(row, ended, top)
            ok = ended.code == 0 and not ended.timed_out and ended.error is None
            if ok:
                return self._ended(row, "cmd", SUCCEEDED, None, exit_code=0)
            if ended.timed_out:
                reason = (
                    f"the command was still running after command_timeout "
                    f"({self.job.actions.command_timeout:g} s) and was killed"
                )
            elif ended.error:
                reason = f"the command failed: {ended.error}"
            else:
                reason = f"the command exited with code {ended.code}"
            return self._ended(row, "cmd", ACTION_FAILED, reason, exit_code=ended.code)
        return row

    def _start_command(self, row: ActionRow, top: Path) -> ActionRow:
        files = self.store.actions.files(row.id)
        try:
            commands.write_manifest(top, self.manifest(row, files))
            row = self.store.actions.update_leg(row.id, "cmd", STARTING, started=time.time())
            crashpoint("action-command-journaled")
            pid = commands.start(top, self.job.actions.command, self.job.actions.command_timeout)
        except OSError as err:
            self._backoff(row, f"cannot start the command: {err}")
            return row
        self.result.started += 1
        log.info(
            "%s: action %d: command started (pid %d, %d files), manifest %s",
            self.job.name,
            row.id,
            pid,
            len(files),
            top / "manifest.json",
        )
        return self.store.actions.update_leg(row.id, "cmd", RUNNING, pid=pid, tries=0)

    def _log_output(self, row: ActionRow, ended: commands.Ended, top: Path) -> None:
        text = ended.output.rstrip()
        if not text:
            return
        more = ended.output_bytes - len(ended.output.encode())
        for line in text.splitlines()[:50]:
            log.info("%s: action %d: | %s", self.job.name, row.id, line)
        if more > 0:
            log.info(
                "%s: action %d: ... %d more bytes of output in %s",
                self.job.name,
                row.id,
                more,
                top / "output.log",
            )

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()


def split(files: Sequence[ConfirmedFile], size: int, limit: int) -> list[list[ConfirmedFile]]:
    """Files in groups whose manifests stay under ``limit`` bytes, from the whole's ``size``."""
    n = -(-size // limit) + 1
    per = max(1, -(-len(files) // n))
    return [list(files[i : i + per]) for i in range(0, len(files), per)]


def _under(root: str, relpath: str) -> str:
    root = root.rstrip("/")
    return f"{root}/{relpath}" if relpath else (root or "/")

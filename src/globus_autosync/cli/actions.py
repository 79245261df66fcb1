"""The commands and lines of actions (flow runs, local commands): ``retry-action``, and what
``status`` and ``tasks`` print about them."""

from __future__ import annotations

import logging
import os
import shutil
from typing import TYPE_CHECKING, Any

import click

from globus_autosync.actions.commands import CLEAN_PATH
from globus_autosync.cli.context import APP
from globus_autosync.engine.lock import JobLock
from globus_autosync.errors import JobError, UsageError
from globus_autosync.store import Store

if TYPE_CHECKING:
    from globus_autosync.cli.context import Context
    from globus_autosync.config import Job

log = logging.getLogger("globus_autosync")


def actions_line(a: dict[str, Any]) -> str:
    """One line of ``status`` for a job's actions: how many in each state."""
    text = (
        f"{a['pending']} pending, {a['running']} running, {a['succeeded']} succeeded, "
        f"{a['failed']} failed"
    )
    if a["collecting"]:
        text += f", {a['collecting']} datasets collecting"
    return text


def action_lines(a: dict[str, Any]) -> None:
    click.echo(f"  actions: {actions_line(a)}")
    for d in a["datasets_waiting"]:
        names = ", ".join(f"{f['path']} ({f['state']})" for f in d["files"])
        click.echo(f"  dataset {d['dataset'] or '.'} (action {d['action']}) waits for: {names}")
    for w in a["waiting_for_you"]:
        click.echo(f"  waiting: action {w['action']}: {w['reason']}")
    for f in a["failed_actions"]:
        click.echo(
            f"  failed: action {f['action']}: {f['reason']}; start it again with: "
            f"{APP} retry-action {f['action']}"
        )


def actions_text(acts: list[dict[str, Any]]) -> None:
    """Each action: its state, its flow run (and the web link) and its command's exit code."""
    for a in acts:
        what = f"batch {a['batch']}" if a["kind"] == "batch" else f"dataset {a['dataset'] or '.'}"
        if a["parts"] > 1:
            what += f" part {a['part']}/{a['parts']}"
        line = f"{a['job']} action {a['action']} ({what}): {a['state']}, {a['files']} files"
        if a["flow_state"] is not None:
            line += f", flow run {a['run_id'] or '-'} {a['flow_state']}"
        if a["command_state"] is not None:
            code = a["exit_code"]
            line += f", command {a['command_state']}" + (
                f" (exit code {code})" if code is not None else ""
            )
        if a["attempt"] > 1:
            line += f", attempt {a['attempt']}"
        if a["reason"]:
            line += f", {a['reason']}"
        click.echo(line)
        if a["url"]:
            click.echo(f"  {a['url']}")


@click.command(
    "retry-action",
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync tasks   # find the id\n"
        "  globus-autosync retry-action 12\n"
        "\n"
        "More: docs/actions.md"
    ),
)
@click.argument("action_id", metavar="ID", type=int)
@click.pass_obj
def retry_action(obj: Context, action_id: int) -> None:
    """Start a failed action (flow run or command) again at the next cycle of its job."""
    cfg = obj.load()
    existing = Store.open_readonly(obj.state_dir)  # never make a state directory here
    if existing is None:
        raise JobError(
            f"no action {action_id}: nothing has run with the state directory {obj.state_dir}; "
            "check --state-dir"
        )
    existing.close()
    store = Store.open(obj.state_dir)
    try:
        with store.guard():
            row = store.actions.get(action_id)
            job = next(
                (j for j in cfg.jobs if store.jobs.find(j.name) == (row.job if row else -1)), None
            )
            if row is None or job is None:
                raise UsageError(f"no action {action_id}; 'globus-autosync tasks' lists them")
            if row.state != "failed":
                raise UsageError(
                    f"action {action_id} is {row.state}; only a failed action is started again"
                )
            with JobLock(obj.state_dir, job.name):
                new = store.actions.retry(action_id)
    finally:
        store.close()
    log.info("%s: action %d will start again (attempt %d)", job.name, action_id, new.attempt)
    click.echo(
        f"{job.name}: action {action_id} will start again (attempt {new.attempt}) at the next "
        f"run of the job ('{APP} run --job {job.name}', or the next cycle of 'watch')"
    )


def command_check(job: Job) -> tuple[bool, str]:
    """The `check` line of a job's command: is its program there, and may it be run?"""
    program = job.actions.command[0]
    found = shutil.which(program, path=CLEAN_PATH) if "/" not in program else program
    if found is None or not os.access(found, os.X_OK) or os.path.isdir(found):
        where = "" if "/" in program else f" on the commands' PATH ({CLEAN_PATH})"
        return False, (
            f"{job.name}: command: {program!r} is not an executable program{where}; "
            "give its full path in 'command'"
        )
    return True, (
        f"{job.name}: command: {found} runs for each {job.actions.on_done}, killed after "
        f"{job.actions.command_timeout:g} s"
    )


COMMANDS = [retry_action]  # what cli.app registers

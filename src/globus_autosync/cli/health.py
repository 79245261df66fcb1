"""The health commands: ``status --check`` (one line per job, exit 0/1/2, for Nagios, Icinga or
a monitoring cron) and ``alert-test`` (a test message through every configured channel)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from globus_autosync.errors import EXIT_JOB, EXIT_OK, AutosyncError, UsageError
from globus_autosync.monitoring import alerts, health
from globus_autosync.store import Store

if TYPE_CHECKING:
    from globus_autosync.cli.context import Context
    from globus_autosync.config import Job

log = logging.getLogger(__name__)


def collection_lines(state_dir: Path, job: Job) -> list[tuple[bool, str]]:
    """`check`: a collection a task of the job found down (GC_NOT_CONNECTED...), as the last
    cycle left it in the store (what its document says, `check` has just read afresh)."""
    if job.transport != "globus":
        return []
    try:
        store = Store.open_readonly(state_dir)
    except AutosyncError:
        return []  # the state database line says why
    if store is None:
        return []
    try:
        rows = [c for c in store.health.collections(job.name) if c.problem and not c.doc_problem]
    finally:
        store.close()
    return [
        (False, f"{job.name}: {c.label} {c.problem}; {health.collection_action(c)}") for c in rows
    ]


def status_check(rows: list[dict[str, Any]]) -> None:
    """One line per job, then exit 0 (all ok), 1 (any lagging or waiting) or 2 (any failing
    or stopped)."""
    for r in rows:
        h = r["health"]
        line = f"{r['job']}: {h['state'].upper()}"
        if h["state"] != health.OK:
            line += f": {h['reason']}; {h['action']}"
        click.echo(line)
    sys.exit(health.worst([r["health"]["state"] for r in rows]))


@click.command(
    "alert-test",
    epilog=(
        "\b\nExamples:\n  globus-autosync alert-test\n\nMore: docs/operations.md#health-and-alerts"
    ),
)
@click.pass_obj
def alert_test(obj: Context) -> None:
    """Send a test message through every channel of [alerts] and say what happened."""
    cfg = obj.load()
    names = alerts.channels(cfg.alerts)
    if not names:
        raise UsageError(
            f'{cfg.path}: no alert channel configured; add webhook = "https://..." or '
            'email = ["ops@example.org"] (with smtp_host) to an [alerts] table'
        )
    subject, text = alerts.sample_message()
    failed = 0
    for channel in names:
        d = alerts.send(cfg.alerts, channel, subject, text)
        failed += not d.ok
        click.echo(f"{'ok  ' if d.ok else 'FAIL'}  {channel} to {d.target}: {d.detail}")
    sys.exit(EXIT_JOB if failed else EXIT_OK)


COMMANDS = [alert_test]  # what cli.app registers

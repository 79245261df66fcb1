"""``verify``: the destination audit. Lists the destination and compares it with every file the
store holds as confirmed; ``--repair`` sends again what the source still has."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator

import click

from globus_autosync.cli.context import Context, pass_ctx, worst
from globus_autosync.errors import EXIT_JOB, EXIT_OK, EXIT_PARTIAL, AutosyncError, job_line
from globus_autosync.verify.audit import audit_job
from globus_autosync.verify.result import SHOWN, JobAudit

log = logging.getLogger(__name__)


@click.command(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync verify\n"
        "  globus-autosync verify --job detector --repair\n"
        "\n"
        "Exit codes: 0 everything is there, 1 something is missing or different, 3 the\n"
        "destination could not be listed (or the audit recorded). More:\n"
        "docs/operations.md#destination-audit"
    )
)
@click.option("--job", "job_name", metavar="NAME", help="Only this job.")
@click.option(
    "--repair",
    is_flag=True,
    help="Queue again what the source still has (sent by the next cycle); record the rest as lost.",
)
@click.option(
    "--forget-lost",
    is_flag=True,
    help="You know about the files reported lost: clear them (and the job's failing health).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def verify(
    obj: Context, job_name: str | None, repair: bool, forget_lost: bool, as_json: bool
) -> None:
    """Check that the destination still holds every file confirmed there."""
    cfg = obj.load()
    jobs = cfg.select(job_name)
    if forget_lost:
        from globus_autosync.store import Store

        store = Store.open(obj.state_dir)
        try:
            with store.guard():  # a failing disk: one line, exit 3
                for job in jobs:
                    job_id = store.jobs.find(job.name)
                    n = store.lost.forget(job_id) if job_id is not None else 0
                    click.echo(f"{job.name}: {n} lost file{'s' if n != 1 else ''} forgotten")
        finally:
            store.close()
        sys.exit(EXIT_OK)
    audits: list[JobAudit] = []
    codes: list[int] = []
    for job in jobs:
        try:
            with _bar(obj, job.name) as progress:
                result = audit_job(job, cfg, obj.state_dir, repair=repair, progress=progress)
        except AutosyncError as err:
            result = JobAudit(job.name, error=job_line(err, job.name))
            codes.append(err.exit_code)
        audits.append(result)
        if result.error is not None:
            codes.append(EXIT_JOB)
        else:
            codes.append(EXIT_PARTIAL if result.bad else EXIT_OK)
    codes.append(_remember(obj, audits))
    if as_json:
        click.echo(json.dumps({"jobs": [a.as_dict() for a in audits]}, indent=2))
    else:
        for a in audits:
            for path, what in a.problems[:SHOWN]:
                click.echo(f"{a.job}: {path}: {what}")
            if len(a.problems) > SHOWN:
                click.echo(f"{a.job}: ... and {len(a.problems) - SHOWN:,} more")
            click.echo(a.line())
    sys.exit(worst(codes))


@contextlib.contextmanager
def _bar(obj: Context, job: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar of the directories audited, on a terminal (rich imported only then)."""
    if obj.quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("directories"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{job}: auditing the destination", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _remember(obj: Context, audits: list[JobAudit]) -> int:
    """Each job's audit, for status, the page and the metrics (a job never run: nothing); the
    exit code of a store that could not record it (a failing disk: said in one line)."""
    from globus_autosync.store import Store

    try:
        store = Store.open(obj.state_dir)
    except AutosyncError:
        return EXIT_OK  # said by the audit already
    try:
        with store.guard():
            for a in audits:
                job_id = store.jobs.find(a.job)
                if job_id is not None:
                    store.audits.record(job_id, a.remembered(time.time()))
    except AutosyncError as err:
        log.error("the audit could not be recorded: %s", err)
        return err.exit_code
    finally:
        store.close()
    return EXIT_OK


COMMANDS = [verify]  # what cli.app registers

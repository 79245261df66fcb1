"""What the store says, shown: ``status`` (``--check``, ``--json``) and ``tasks``."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from globus_autosync.cli import actions as cli_actions
from globus_autosync.cli import health as cli_health
from globus_autosync.cli.context import Context, age, pass_ctx, readonly_store
from globus_autosync.config.units import human_bytes
from globus_autosync.monitoring import status as report

log = logging.getLogger("globus_autosync")


@click.command(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync status\n"
        "  globus-autosync status --check   # exit 0 ok, 1 lagging/waiting, 2 failing\n"
        "\n"
        "More: docs/operations.md#health-and-alerts"
    )
)
@click.option("--job", "job_name", metavar="NAME", help="Only this job.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--check",
    is_flag=True,
    help="One health line per job; exit 0 ok, 1 lagging or waiting, 2 failing or stopped.",
)
@pass_ctx
def status(obj: Context, job_name: str | None, as_json: bool, check: bool) -> None:
    """Show per job its health, and what is done, waiting, queued, in flight, failed, skipped."""
    cfg = obj.load()
    with readonly_store(obj) as store:
        rows = [report.job_status(store, job) for job in cfg.select(job_name)]
    if check:
        cli_health.status_check(rows)
    if as_json:
        click.echo(json.dumps({"jobs": rows}, indent=2))
        return
    if sys.stdout.isatty():
        _status_table(rows)
        return
    for r in rows:
        h = r["health"]
        click.echo(
            f"{r['job']}: {h['state']}"
            + (f": {h['reason']}; {h['action']}" if h["state"] != "ok" else "")
        )
        deleted = r["cleanup"]["deleted_files"] if r["cleanup"] is not None else 0
        click.echo(
            f"{r['job']}: confirmed {r['confirmed_total']} "
            f"({human_bytes(r['confirmed_bytes_total'])}) over its life, {deleted} of them since "
            f"deleted from the source by cleanup; done {r['done']} "
            f"({human_bytes(r['bytes_done'])}), "
            f"waiting to settle {r['waiting']}, queued {r['queued']}, in flight {r['in_flight']}, "
            f"failed {r['failed']}, skipped {r['skipped']}, lag {age(r['lag_seconds'])}"
        )
        if r["last_run"]:
            click.echo(f"  last run {r['last_run']}: {r['last_result']}: {r['last_summary']}")
        else:
            click.echo(f"  never run (nothing recorded for it in {obj.state_dir})")
        if r["cleanup"] is not None:
            click.echo(f"  cleanup: {cleanup_line(r['cleanup'])}")
        if r["audit"] is not None:
            a = r["audit"]
            found = a["error"] or (
                f"{a['confirmed']} confirmed, {a['missing']} missing, {a['different']} different"
            )
            click.echo(f"  last audit of the destination (verify) {a['finished']}: {found}")
        if r["actions"] is not None:
            cli_actions.action_lines(r["actions"])
        for t in r["tasks_waiting"]:
            click.echo(f"  waiting: batch {t['batch']}: {t['reason']}")
        for c in r["collections"]:
            if c["problem"]:
                name = c["name"] or c["collection"]
                click.echo(f"  collection: {c['role']} {name} {c['problem']}")
        for p in r["problems"]:
            click.echo(f"  {p['state']}: {p['path']}: {p['reason']}")


def cleanup_line(c: dict[str, Any]) -> str:
    """One line of ``status`` for a job's cleanup."""
    text = (
        f"deleted {c['deleted_files']} files ({human_bytes(c['deleted_bytes'])}), last "
        f"{c['last_deleted'] or 'never'}; {c['waiting']} confirmed files wait for cleanup"
    )
    if c["source_free_bytes"] is not None:
        text += f"; source {human_bytes(c['source_free_bytes'])} free"
        if c["keep_free_bytes"] is not None:
            text += f" (keeps {human_bytes(c['keep_free_bytes'])} free)"
    if c["failing"]:
        text += f"; {len(c['failing'])} deletions failing, e.g. {c['failing'][0]['path']}: "
        text += c["failing"][0]["reason"]
    if not c["on"]:
        text += " (cleanup is off now)"
    return text


def _status_table(rows: list[dict[str, Any]]) -> None:
    # here: rich (cli.display) costs 71 ms to import; only a terminal gets tables
    from globus_autosync.cli.display import table

    table(
        "health",
        ["job", "health", "why", "what to do"],
        [
            [r["job"], r["health"]["state"], r["health"]["reason"], r["health"]["action"]]
            for r in rows
        ],
    )
    cols = [
        "job",
        "confirmed (life)",
        "bytes (life)",
        "waiting",
        "queued",
        "in flight",
        "failed",
        "skipped",
        "lag",
        "last run",
    ]
    table(
        "globus-autosync status",
        cols,
        [
            [
                r["job"],
                str(r["confirmed_total"]),
                human_bytes(r["confirmed_bytes_total"]),
                str(r["waiting"]),
                str(r["queued"]),
                str(r["in_flight"]),
                str(r["failed"]),
                str(r["skipped"]),
                age(r["lag_seconds"]),
                f"{r['last_run'] or 'never'} {r['last_result'] or ''}",
            ]
            for r in rows
        ],
    )
    waiting = [[r["job"], str(t["batch"]), t["reason"]] for r in rows for t in r["tasks_waiting"]]
    waiting += [
        [r["job"], c["role"], f"{c['name'] or c['collection']} {c['problem']}"]
        for r in rows
        for c in r["collections"]
        if c["problem"]
    ]
    if waiting:
        table("tasks waiting for you", ["job", "batch", "why"], waiting)
    cleanups = [[r["job"], cleanup_line(r["cleanup"])] for r in rows if r["cleanup"]]
    if cleanups:
        table("source cleanup", ["job", "cleanup"], cleanups)
    acts = [[r["job"], cli_actions.actions_line(r["actions"])] for r in rows if r["actions"]]
    if acts:
        table("actions", ["job", "actions"], acts)
    for r in rows:
        if r["actions"] and (
            r["actions"]["datasets_waiting"]
            or r["actions"]["failed_actions"]
            or r["actions"]["waiting_for_you"]
        ):
            click.echo(r["job"])
            cli_actions.action_lines(r["actions"])
    problems = [
        [r["job"], p["state"], p["path"], p["reason"] or ""] for r in rows for p in r["problems"]
    ]
    if problems:
        table("failed and skipped files (newest first)", ["job", "state", "path", "why"], problems)


@click.command(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync tasks --job detector --limit 5\n"
        "\n"
        "More: docs/operations.md"
    )
)
@click.option("--job", "job_name", metavar="NAME", help="Only this job.")
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many recent batches per job.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def tasks(obj: Context, job_name: str | None, limit: int, as_json: bool) -> None:
    """Show recent batches: id, task id, state, files, bytes, submitted and finished times."""
    cfg = obj.load()
    with readonly_store(obj) as store:
        rows = [t for job in cfg.select(job_name) for t in report.job_tasks(store, job, limit)]
        acts = [a for job in cfg.select(job_name) for a in report.job_actions(store, job, limit)]
    if as_json:
        click.echo(json.dumps({"tasks": rows, "actions": acts}, indent=2))
        return
    _tasks_text(rows, obj.state_dir)
    cli_actions.actions_text(acts)


def _tasks_text(rows: list[dict[str, Any]], state_dir: Path) -> None:
    if rows and sys.stdout.isatty():
        # here: rich (cli.display) costs 71 ms to import; only a terminal gets tables
        from globus_autosync.cli.display import table

        cols = ["job", "batch", "state", "files", "bytes", "task", "submitted", "finished", "why"]
        table(
            "recent batches",
            cols,
            [
                [
                    t["job"],
                    str(t["batch"]),
                    t["state"],
                    str(t["files"]),
                    human_bytes(t["bytes"]),
                    (t["url"] or t["task_id"] or "-"),
                    t["submitted"] or "-",
                    t["finished"] or "-",
                    t["reason"] or "",
                ]
                for t in rows
            ],
        )
        return
    if not rows:
        click.echo(f"no batches yet (state directory {state_dir})")
    for t in rows:
        line = (
            f"{t['job']} batch {t['batch']}: {t['state']}, {t['files']} files "
            f"({human_bytes(t['bytes'])}), task {t['task_id'] or '-'}, "
            f"submitted {t['submitted'] or '-'}, finished {t['finished'] or '-'}"
        )
        if t["reason"]:
            line += f", {t['reason']}"
        click.echo(line)
        if t["url"]:
            click.echo(f"  {t['url']}")


COMMANDS = [status, tasks]  # what cli.app registers

"""The command line: parse, call the engine, render, and map errors to exit codes in one place."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from globus_autosync import __version__, cli_globus, cli_health, config
from globus_autosync.cycle import baseline_job, human_bytes, run_job
from globus_autosync.errors import (
    EXIT_JOB,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    AutosyncError,
    UsageError,
)
from globus_autosync.logs import SUMMARY_LOGGER
from globus_autosync.logs import setup as setup_logging
from globus_autosync.store import Store
from globus_autosync.transports import make_transport

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from globus_autosync.walk import WalkStats

log = logging.getLogger("globus_autosync")

APP = "globus-autosync"
EXIT_INTERNAL = 70  # a bug: please report it


# Modules that only some commands need are imported where they are used: a cron `run` starts a
# fresh interpreter every few minutes, and its start-up is most of a quiet run's time.


def default_config() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def default_state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir(APP))


@dataclass
class Context:
    config_path: Path
    state_dir: Path
    debug: bool
    quiet: bool

    def load(self) -> config.Config:
        return config.load(self.config_path)


pass_ctx = click.make_pass_decorator(Context)


def _worst(codes: list[int]) -> int:
    """Several jobs: a configuration error outweighs a job that could not run, which outweighs
    a lock, which outweighs failed files."""
    for code in (EXIT_USAGE, EXIT_JOB, EXIT_LOCKED, EXIT_PARTIAL):
        if code in codes:
            return code
    return next((code for code in codes if code != EXIT_OK), EXIT_OK)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    envvar="GLOBUS_AUTOSYNC_CONFIG",
    show_envvar=True,
    help="Configuration file [default: <user config dir>/globus-autosync/config.toml].",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    envvar="GLOBUS_AUTOSYNC_STATE_DIR",
    show_envvar=True,
    help="Where the state database, locks and log live [default: <user state dir>/"
    "globus-autosync].",
)
@click.option("--debug", is_flag=True, help="Log everything; show tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
@click.version_option(__version__, "--version", prog_name=APP)
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path | None, state_dir: Path | None, debug: bool, quiet: bool
) -> None:
    """Ship every new or modified file from a directory to a Globus collection or a mounted
    directory: unattended, never twice, never lost."""
    ctx.obj = Context(
        config_path=(config_path or default_config()).expanduser(),
        state_dir=(state_dir or default_state_dir()).expanduser(),
        debug=debug,
        quiet=quiet,
    )
    needs_file_log = ctx.invoked_subcommand in ("run", "baseline", "watch", "login", "logout")
    resident = ctx.invoked_subcommand == "watch"
    setup_logging(ctx.obj.state_dir, debug, quiet, to_file=needs_file_log, resident=resident)


@cli.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@pass_ctx
def init(obj: Context, path: Path | None) -> None:
    """Write a commented example configuration (never over an existing file)."""
    target = path or obj.config_path
    if target.exists():
        raise UsageError(f"{target} already exists; edit it, or name another file: init PATH")
    from importlib import resources

    text = resources.files("globus_autosync").joinpath("example.toml").read_text("utf-8")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "x", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as err:
        raise UsageError(f"cannot write {target}: {err.strerror}") from None
    click.echo(f"wrote {target}; edit it, then run: {APP} -c {target} check")


@cli.command()
@click.option("--job", "job_name", metavar="NAME", help="Only this job.")
@pass_ctx
def check(obj: Context, job_name: str | None) -> None:
    """Check the configuration, sources, destinations and state database without moving data."""
    cfg = obj.load()
    jobs = cfg.select(job_name)
    lines: list[tuple[bool, str]] = [(True, f"config {cfg.path}: {len(cfg.jobs)} job(s)")]
    try:
        store = Store.open(obj.state_dir)
        store.close()
        lines.append((True, f"state database {obj.state_dir / 'state.db'} is usable"))
    except AutosyncError as err:
        lines.append((False, str(err)))
    for job in jobs:
        src = job.source
        if job.scan == "globus":  # a path on the source collection: the transport's lines
            lines.append((True, f"{job.name}: source {src} is listed through Globus"))
        elif src.is_dir() and os.access(src, os.R_OK | os.X_OK):
            lines.append((True, f"{job.name}: source {src} is readable"))
        else:
            why = "check the 'source' key and that its disk is mounted"
            lines.append((False, f"{job.name}: source {src} is not a readable directory; {why}"))
        lines.append(_cleanup_check(job))
        try:
            transport = make_transport(job, cfg, obj.state_dir)
            try:
                lines.extend(
                    (c.ok, f"{job.name}: {c.what}: {c.detail}") for c in transport.checks()
                )
            finally:
                transport.close()
        except AutosyncError as err:
            lines.append((False, f"{job.name}: {err}"))
        lines.extend(cli_health.collection_lines(obj.state_dir, job))
    for ok, text in lines:
        click.echo(f"{'ok  ' if ok else 'FAIL'}  {text}")
    if not all(ok for ok, _ in lines):
        sys.exit(EXIT_JOB)


def _cleanup_check(job: config.Job) -> tuple[bool, str]:
    """Whether cleanup is on, and what it would keep free; a source that cannot delete fails."""
    if not job.cleanup:
        return True, f"{job.name}: cleanup: off (source files are never deleted)"
    from globus_autosync.cleanup import free_space

    rules = []
    if job.delete_after is not None:
        after = job.delete_after
        span = f"{after / 86400:g} d" if after >= 86400 and after % 3600 == 0 else _age(after)
        rules.append(f"delete source files {span} after their copy is confirmed")
    if job.keep_free is not None:
        rules.append(f"delete the oldest confirmed early while less than {job.keep_free} is free")
    text = f"{job.name}: cleanup: on: {' and '.join(rules)}, at most {job.max_deletes} a cycle"
    try:
        free, total = free_space(job.source)
    except OSError as err:
        return False, f"{text}; cannot learn the source's free space: {err.strerror}"
    text += f"; the source has {human_bytes(free)} free of {human_bytes(total)}"
    if job.keep_free is not None:
        want = job.keep_free.bytes_of(total)
        text += f" (keeps {human_bytes(want)} free)"
    if not os.access(job.source, os.W_OK | os.X_OK):
        return False, f"{text}; but the source is not writable: nothing could be deleted"
    return True, text


def _parse_time(text: str) -> int:
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--before {text!r} is not an ISO 8601 time; write e.g. 2018-09-26T10:15:00"
        ) from None
    return int(moment.timestamp() * 1_000_000_000)


@cli.command()
@click.option("--job", "job_name", metavar="NAME", help="Only this job.")
@click.option(
    "--before",
    metavar="TIME",
    help="Only files last modified before TIME (ISO 8601, local time unless it has an offset).",
)
@pass_ctx
def baseline(obj: Context, job_name: str | None, before: str | None) -> None:
    """Record the files now in the source as already transferred, without sending them."""
    cfg = obj.load()
    before_ns = _parse_time(before) if before else None
    codes = []
    for job in cfg.select(job_name):
        try:
            with _progress(obj, f"{job.name}: baseline") as progress:
                result = baseline_job(job, obj.state_dir, before_ns, progress, cfg)
        except AutosyncError as err:
            log.error("%s", err)
            codes.append(err.exit_code)
            continue
        log.info("%s", result.line())
        click.echo(result.line())
        codes.append(EXIT_OK)
    sys.exit(_worst(codes))


@cli.command()
@click.option("--job", "job_name", metavar="NAME", help="Only this job.")
@click.option("--dry-run", is_flag=True, help="List what would be sent; change nothing.")
@click.option(
    "--full", is_flag=True, help="Walk the whole tree (catches files rewritten in place)."
)
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write Prometheus metrics here (node_exporter textfile-collector format).",
)
@pass_ctx
def run(
    obj: Context, job_name: str | None, dry_run: bool, full: bool, metrics_file: Path | None
) -> None:
    """Run one sync cycle for every job (or one)."""
    cfg = obj.load()
    codes = []
    for job in cfg.select(job_name):
        try:
            with _progress(obj, f"{job.name}: scanning") as progress:
                summary = run_job(
                    job, cfg, obj.state_dir, dry_run=dry_run, full=full, progress=progress
                )
        except AutosyncError as err:
            log.error("%s", err)
            codes.append(err.exit_code)
            continue
        codes.append(summary.exit_code)
        if dry_run:
            for path in summary.would_send:
                click.echo(f"would send {path}")
            for path in summary.would_delete:
                click.echo(f"would delete {path}")
        else:
            # one line in the log for every run, even one that found nothing
            logging.getLogger(SUMMARY_LOGGER).log(
                logging.INFO if summary.exit_code == EXIT_OK else logging.WARNING,
                "%s",
                summary.line(),
            )
        if not obj.quiet or summary.exit_code != EXIT_OK:
            click.echo(summary.line())
    if cfg.alerts.enabled and not dry_run:
        cli_health.after_run(cfg, obj.state_dir, cfg.select(job_name))
    if metrics_file is not None and not dry_run:
        from globus_autosync import metrics

        try:
            metrics.write_file(metrics_file, cfg, obj.state_dir)
        except OSError as err:
            log.error("cannot write the metrics file %s: %s", metrics_file, err.strerror)
            codes.append(EXIT_PARTIAL)
    sys.exit(_worst(codes))


@cli.command()
@click.option("--job", "job_name", metavar="NAME", help="Only this job.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve Prometheus metrics on this port.",
)
@click.option(
    "--metrics-address",
    default="0.0.0.0",
    show_default=True,
    metavar="ADDR",
    help="Address the metrics server listens on.",
)
@pass_ctx
def watch(
    obj: Context, job_name: str | None, metrics_port: int | None, metrics_address: str
) -> None:
    """Run as a service: a cycle of every job every `interval`, until SIGTERM (SIGHUP reloads)."""
    from globus_autosync.watch import Watcher

    cfg = obj.load()
    watcher = Watcher(cfg, obj.state_dir, job_name)
    watcher.install_signals()
    if metrics_port is not None:
        from globus_autosync import metrics

        try:
            metrics.serve(metrics_port, lambda: watcher.config, obj.state_dir, metrics_address)
        except OSError as err:
            raise UsageError(
                f"cannot serve metrics on port {metrics_port}: {err.strerror}; choose another"
            ) from None
        log.info("metrics on http://%s:%d/metrics", metrics_address, metrics_port)
    watcher.run()


def _self_command(obj: Context) -> str:
    """How this install is started, with the config and state dir spelled out."""
    import shlex
    import shutil

    argv0 = Path(sys.argv[0])
    exe = str(argv0.absolute()) if argv0.name == APP and argv0.exists() else shutil.which(APP)
    base = shlex.quote(exe) if exe else f"{shlex.quote(sys.executable)} -m globus_autosync"
    return (
        f"{base} --config {shlex.quote(str(obj.config_path.absolute()))} "
        f"--state-dir {shlex.quote(str(obj.state_dir.absolute()))}"
    )


@cli.group()
def service() -> None:
    """Print a systemd unit or a crontab line for this install."""


@service.command("systemd")
@pass_ctx
def service_systemd(obj: Context) -> None:
    """A systemd unit running `watch` (install it under ~/.config/systemd/user/)."""
    click.echo(
        f"""# globus-autosync.service: save as ~/.config/systemd/user/globus-autosync.service, then
#   systemctl --user daemon-reload && systemctl --user enable --now globus-autosync
#   (and 'loginctl enable-linger $USER' so it runs without a login session)
[Unit]
Description=globus-autosync: ship new instrument files as they settle
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={_self_command(obj)} watch
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=30
# For a service account instead of 'globus-autosync login':
# Environment=GLOBUS_AUTOSYNC_CLIENT_ID=...
# EnvironmentFile=%h/.config/globus-autosync/secret.env

[Install]
WantedBy=default.target"""
    )


@service.command("cron")
@pass_ctx
def service_cron(obj: Context) -> None:
    """A crontab line running `run` every five minutes (add it with `crontab -e`)."""
    click.echo(f"*/5 * * * * {_self_command(obj)} --quiet run")


@contextlib.contextmanager
def _progress(obj: Context, label: str) -> Iterator[Callable[[WalkStats], None] | None]:
    """A progress line on a terminal (rich is imported only then: start-up time counts)."""
    if obj.quiet or not sys.stderr.isatty():
        yield None
        return
    from globus_autosync.display import ScanProgress

    progress = ScanProgress(label, enabled=True)
    try:
        yield progress
    finally:
        progress.close()


@contextlib.contextmanager
def _readonly_store(obj: Context) -> Iterator[Store | None]:
    """The state database for reading (None before the first run), closed afterwards."""
    store = Store.open_readonly(obj.state_dir)
    try:
        yield store
    finally:
        if store is not None:
            store.close()


@cli.command()
@click.option("--job", "job_name", metavar="NAME", help="Only this job.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--check", is_flag=True, help="One health line per job; exit 0 ok, 1 lagging or waiting, "
    "2 failing or stopped."
)  # fmt: skip
@pass_ctx
def status(obj: Context, job_name: str | None, as_json: bool, check: bool) -> None:
    """Show per job its health, and what is done, waiting, queued, in flight, failed, skipped."""
    import json

    from globus_autosync import report

    cfg = obj.load()
    with _readonly_store(obj) as store:
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
        click.echo(f"{r['job']}: {h['state']}" + (f": {h['reason']}; {h['action']}"
                                                   if h["state"] != "ok" else ""))  # fmt: skip
        click.echo(
            f"{r['job']}: done {r['done']} ({human_bytes(r['bytes_done'])}), "
            f"waiting to settle {r['waiting']}, queued {r['queued']}, in flight {r['in_flight']}, "
            f"failed {r['failed']}, skipped {r['skipped']}, lag {_age(r['lag_seconds'])}"
        )
        if r["last_run"]:
            click.echo(f"  last run {r['last_run']}: {r['last_result']}: {r['last_summary']}")
        else:
            click.echo("  never run")
        if r["cleanup"] is not None:
            click.echo(f"  cleanup: {report.cleanup_line(r['cleanup'])}")
        for t in r["tasks_waiting"]:
            click.echo(f"  waiting: batch {t['batch']}: {t['reason']}")
        for c in r["collections"]:
            if c["problem"]:
                name = c["name"] or c["collection"]
                click.echo(f"  collection: {c['role']} {name} {c['problem']}")
        for p in r["problems"]:
            click.echo(f"  {p['state']}: {p['path']}: {p['reason']}")


def _status_table(rows: list[dict[str, Any]]) -> None:
    from globus_autosync import report
    from globus_autosync.display import table

    table("health", ["job", "health", "why", "what to do"],
          [[r["job"], r["health"]["state"], r["health"]["reason"], r["health"]["action"]]
           for r in rows])  # fmt: skip
    cols = ["job", "done", "bytes done", "waiting", "queued", "in flight", "failed", "skipped",
            "lag", "last run"]  # fmt: skip
    table(
        "globus-autosync status",
        cols,
        [
            [r["job"], str(r["done"]), human_bytes(r["bytes_done"]), str(r["waiting"]),
             str(r["queued"]), str(r["in_flight"]), str(r["failed"]), str(r["skipped"]),
             _age(r["lag_seconds"]), f"{r['last_run'] or 'never'} {r['last_result'] or ''}"]
            for r in rows
        ],
    )  # fmt: skip
    waiting = [[r["job"], str(t["batch"]), t["reason"]] for r in rows for t in r["tasks_waiting"]]
    waiting += [[r["job"], c["role"], f"{c['name'] or c['collection']} {c['problem']}"]
                for r in rows for c in r["collections"] if c["problem"]]  # fmt: skip
    if waiting:
        table("tasks waiting for you", ["job", "batch", "why"], waiting)
    cleanups = [[r["job"], report.cleanup_line(r["cleanup"])] for r in rows if r["cleanup"]]
    if cleanups:
        table("source cleanup", ["job", "cleanup"], cleanups)
    problems = [[r["job"], p["state"], p["path"], p["reason"] or ""] for r in rows
                for p in r["problems"]]  # fmt: skip
    if problems:
        table("failed and skipped files (newest first)", ["job", "state", "path", "why"], problems)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@cli.command()
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
    import json

    from globus_autosync import report

    cfg = obj.load()
    with _readonly_store(obj) as store:
        rows = [t for job in cfg.select(job_name) for t in report.job_tasks(store, job, limit)]
    if as_json:
        click.echo(json.dumps({"tasks": rows}, indent=2))
        return
    if rows and sys.stdout.isatty():
        from globus_autosync.display import table

        cols = ["job", "batch", "state", "files", "bytes", "task", "submitted", "finished",
                "why"]  # fmt: skip
        table(
            "recent batches",
            cols,
            [
                [t["job"], str(t["batch"]), t["state"], str(t["files"]), human_bytes(t["bytes"]),
                 (t["url"] or t["task_id"] or "-"), t["submitted"] or "-", t["finished"] or "-",
                 t["reason"] or ""]
                for t in rows
            ],
        )  # fmt: skip
        return
    if not rows:
        click.echo("no batches yet")
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


cli.add_command(cli_globus.login)
cli.add_command(cli_globus.logout)
cli.add_command(cli_globus.whoami)
cli.add_command(cli_health.alert_test)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error becomes one line on stderr and a documented exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name=APP, standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(EXIT_USAGE if e.exit_code == 2 else e.exit_code)
    except AutosyncError as e:
        if debug:
            logging.getLogger(__name__).exception("error")
        click.echo(f"{APP}: error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:
        if debug:
            raise
        click.echo(
            f"{APP}: internal error: {type(e).__name__}: {e}; run again with --debug "
            "for the traceback and report it",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_OK)

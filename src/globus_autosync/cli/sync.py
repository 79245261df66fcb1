"""The commands that move data or prepare for it: ``init``, ``check``, ``baseline``, ``run``,
``watch``."""

from __future__ import annotations

import logging
import os
import sys
from functools import partial
from pathlib import Path

import click

from globus_autosync import config
from globus_autosync.cli.context import APP, Context, age, pass_ctx, progress_line, worst
from globus_autosync.cli.logs import SUMMARY_LOGGER
from globus_autosync.config.units import human_bytes
from globus_autosync.engine.lock import Served
from globus_autosync.engine.stall import unless_stalled
from globus_autosync.engine.step import After, run_job
from globus_autosync.errors import (
    EXIT_JOB,
    EXIT_OK,
    EXIT_PARTIAL,
    AutosyncError,
    JobError,
    UsageError,
    job_line,
    os_error,
)
from globus_autosync.sources.local.fstype import kind_of
from globus_autosync.store import Store
from globus_autosync.transports import make_transport

log = logging.getLogger("globus_autosync")


@click.command(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync init\n"
        "  globus-autosync init /etc/globus-autosync.toml\n"
        "\n"
        "More: docs/getting-started.md, docs/reference/configuration.md"
    )
)
@click.argument("path", required=False, type=click.Path(path_type=Path))
@pass_ctx
def init(obj: Context, path: Path | None) -> None:
    """Write a commented example configuration (never over an existing file)."""
    target = path or obj.config_path
    if target.exists():
        raise UsageError(f"{target} already exists; edit it, or name another file: init PATH")
    from globus_autosync.config import reference  # here: it and json cost a run 1.3 ms

    text = reference.template()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "x", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as err:
        raise UsageError(f"cannot write {target}: {err.strerror}") from None
    click.echo(f"wrote {target}; edit it, then run: {APP} -c {target} check")


@click.command(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync check\n"
        "  globus-autosync -c job.toml check --job detector\n"
        "\n"
        "More: docs/troubleshooting.md"
    )
)
@click.option("--job", "job_name", metavar="NAME", help="Only this job.")
@click.option(
    "--accept-device",
    is_flag=True,
    help="Record the file systems the jobs' roots are on now (a source moved on purpose).",
)
@pass_ctx
def check(obj: Context, job_name: str | None, accept_device: bool) -> None:
    """Check the configuration, sources, destinations and state database without moving data."""
    cfg = obj.load()
    jobs = cfg.select(job_name)
    lines: list[tuple[bool, str]] = [(True, f"config {cfg.path}: {len(cfg.jobs)} job(s)")]
    try:
        store = Store.open(obj.state_dir)
        try:
            if accept_device:
                lines.extend((True, line) for j in jobs for line in _accept(store, j))
        finally:
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
            lines.append((True, f"{job.name}: watch finds its changes by {kind_of(src).mode}"))
        else:
            why = "check the 'source' key and that its disk is mounted"
            lines.append((False, f"{job.name}: source {src} is not a readable directory; {why}"))
        lines.append(_cleanup_check(job))
        if job.actions.flow is not None:
            from globus_autosync.cli.globus import flow_check

            lines.append(flow_check(job, cfg, obj.state_dir))
        if job.actions.command:
            from globus_autosync.cli.actions import command_check

            lines.append(command_check(job))
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
        from globus_autosync.cli.health import collection_lines

        lines.extend(collection_lines(obj.state_dir, job))
    for ok, text in lines:
        click.echo(f"{'ok  ' if ok else 'FAIL'}  {text}")
    if not all(ok for ok, _ in lines):
        sys.exit(EXIT_JOB)


def _accept(store: Store, job: config.Job) -> list[str]:
    from globus_autosync.engine import mounts

    try:
        return mounts.accept(store, job)
    except OSError as err:
        raise JobError(f"job {job.name!r}: cannot accept its roots: {err}") from None


def _cleanup_check(job: config.Job) -> tuple[bool, str]:
    """Whether cleanup is on, and what it would keep free; a source that cannot delete fails."""
    if not job.cleanup.enabled:
        return True, f"{job.name}: cleanup: off (source files are never deleted)"
    from globus_autosync.cleanup.deleter import free_space

    rules = []
    if job.cleanup.delete_after is not None:
        after = job.cleanup.delete_after
        span = f"{after / 86400:g} d" if after >= 86400 and after % 3600 == 0 else age(after)
        rules.append(f"delete source files {span} after their copy is confirmed")
    if job.cleanup.keep_free is not None:
        rules.append(
            f"delete the oldest confirmed early while less than {job.cleanup.keep_free} is free"
        )
    text = (
        f"{job.name}: cleanup: on: {' and '.join(rules)}, at most {job.cleanup.max_deletes} a cycle"
    )
    try:
        free, total = free_space(job.source)
    except OSError as err:
        return False, f"{text}; cannot learn the source's free space: {err.strerror}"
    text += f"; the source has {human_bytes(free)} free of {human_bytes(total)}"
    if job.cleanup.keep_free is not None:
        want = job.cleanup.keep_free.bytes_of(total)
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


@click.command(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync baseline --before 2026-11-01T00:00\n"
        "  globus-autosync baseline --job detector\n"
        "\n"
        "More: docs/getting-started.md"
    )
)
@click.option("--job", "job_name", metavar="NAME", help="Only this job.")
@click.option(
    "--before",
    metavar="TIME",
    help="Only files last modified before TIME (ISO 8601, local time unless it has an offset).",
)
@pass_ctx
def baseline(obj: Context, job_name: str | None, before: str | None) -> None:
    """Record the files now in the source as already transferred, without sending them."""
    # here: the baseline's module costs every `run` 0.5 ms
    from globus_autosync.engine.baseline import baseline_job

    cfg = obj.load()
    before_ns = _parse_time(before) if before else None
    codes = []
    for job in cfg.select(job_name):
        try:
            with progress_line(obj, f"{job.name}: baseline") as progress:
                result = baseline_job(job, obj.state_dir, before_ns, progress, cfg)
        except (AutosyncError, OSError) as caught:
            err = os_error(caught, job.name) if isinstance(caught, OSError) else caught
            log.error("%s", job_line(err, job.name))
            codes.append(err.exit_code)
            continue
        log.info("%s", result.line())
        click.echo(result.line())
        codes.append(EXIT_OK)
    sys.exit(worst(codes))


@click.command(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync run --dry-run\n"
        "  globus-autosync --quiet run --job detector\n"
        "\n"
        "More: docs/concepts.md, docs/operations.md"
    )
)
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
            if not dry_run:
                Served.check(obj.state_dir, job.name)
            with progress_line(obj, f"{job.name}: scanning") as progress:
                one = partial(
                    run_job,
                    job,
                    cfg,
                    obj.state_dir,
                    dry_run=dry_run,
                    full=full,
                    progress=progress,
                    after=_audits(cfg, job_name),
                )
                summary = unless_stalled(job, cfg, obj.state_dir, one)
        except (AutosyncError, OSError) as caught:
            err = os_error(caught, job.name) if isinstance(caught, OSError) else caught
            log.error("%s", job_line(err, job.name))
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
    if metrics_file is not None and not dry_run:
        from globus_autosync.monitoring import metrics

        try:
            metrics.write_file(metrics_file, cfg, obj.state_dir)
        except OSError as err:
            log.error("cannot write the metrics file %s: %s", metrics_file, err.strerror)
            codes.append(EXIT_PARTIAL)
    sys.exit(worst(codes))


@click.command(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync watch --http 127.0.0.1:8470 --metrics-port 9108\n"
        "\n"
        "More: docs/operations.md"
    )
)
@click.option("--job", "job_name", metavar="NAME", help="Only this job.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve Prometheus metrics on this port.",
)
@click.option(
    "--metrics-address",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDR",
    help="Address the metrics server listens on (another than 127.0.0.1 is your choice).",
)
@click.option(
    "--http",
    "http_address",
    metavar="ADDRESS:PORT",
    help="Serve the status page, /api/v1 and /metrics here too (e.g. 127.0.0.1:8470).",
)
@pass_ctx
def watch(
    obj: Context,
    job_name: str | None,
    metrics_port: int | None,
    metrics_address: str,
    http_address: str | None,
) -> None:
    """Run as a service: a cycle of every job every `interval`, until SIGTERM (SIGHUP reloads)."""
    from globus_autosync.engine.watch import Watcher

    cfg = obj.load()
    watcher = Watcher(cfg, obj.state_dir, job_name, after=_audits(cfg, job_name))
    watcher.install_signals()
    if metrics_port is not None:
        from globus_autosync.monitoring import metrics

        try:
            metrics.serve(metrics_port, lambda: watcher.config, obj.state_dir, metrics_address)
        except OSError as err:
            raise UsageError(
                f"cannot serve metrics on port {metrics_port}: {err.strerror}; choose another"
            ) from None
        log.info("metrics on http://%s:%d/metrics", metrics_address, metrics_port)
    if http_address is not None:
        from globus_autosync.web import app as web

        host, port = web.parse_address(http_address)
        web.start(host, port, lambda: watcher.config, obj.state_dir)
        log.info("status page on http://%s:%d/", host, port)
    watcher.run()


def _audits(cfg: config.Config, job_name: str | None) -> After | None:
    """The scheduled audit, after each cycle, when a job asks for one (``verify_every``; its
    import costs nothing to a run without one)."""
    if all(j.verify_every is None for j in cfg.select(job_name)):
        return None
    from globus_autosync.verify.scheduled import between_cycles

    return between_cycles


COMMANDS = [init, check, baseline, run, watch]  # what cli.app registers

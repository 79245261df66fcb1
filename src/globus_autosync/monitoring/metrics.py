"""Prometheus metrics: served by ``watch --metrics-port``, written by ``run --metrics-file``.

Every scrape reads the state database afresh (read-only), so the numbers are the store's truth,
whichever process wrote it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from globus_autosync.cleanup.deleter import free_space
from globus_autosync.config import Config
from globus_autosync.monitoring import health
from globus_autosync.store import Store

PREFIX = "globus_autosync"
# the job's label: not "job", which Prometheus sets on every scraped target (its scrape job)
LABEL = "autosync_job"
ACTION_STATES = ("pending", "running", "succeeded", "failed")
FILE_STATES = ("done", "waiting", "queued", "in_flight", "failed", "skipped")


class StoreCollector(Collector):
    """Per job: files by state, bytes done, lag, last successful cycle, cycle duration, tasks
    waiting for someone."""

    def __init__(self, config: Callable[[], Config], state_dir: Path) -> None:
        self.config, self.state_dir = config, state_dir

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        files = GaugeMetricFamily(f"{PREFIX}_files", "Files by state", labels=[LABEL, "state"])
        done_bytes = GaugeMetricFamily(
            f"{PREFIX}_bytes_done",
            "Bytes of the files the store holds as confirmed now (less once cleanup deletes "
            "sources: for what was sent, use confirmed_bytes_total)",
            labels=[LABEL],
        )
        confirmed_files = CounterMetricFamily(
            f"{PREFIX}_confirmed_files",
            "Files the destination confirmed over the job's life",
            labels=[LABEL],
        )
        confirmed_bytes = CounterMetricFamily(
            f"{PREFIX}_confirmed_bytes",
            "Bytes the destination confirmed over the job's life",
            labels=[LABEL],
        )
        audit_missing = GaugeMetricFamily(
            f"{PREFIX}_destination_missing",
            "Confirmed files the latest audit did not find at the destination, not repaired",
            labels=[LABEL],
        )
        audit_different = GaugeMetricFamily(
            f"{PREFIX}_destination_different",
            "Confirmed files the latest audit found different (size or mtime), not repaired",
            labels=[LABEL],
        )
        audit_at = GaugeMetricFamily(
            f"{PREFIX}_last_audit_timestamp_seconds",
            "When the latest complete audit of the destination ended (Unix time)",
            labels=[LABEL],
        )
        unlistable = GaugeMetricFamily(
            f"{PREFIX}_unlistable_directories",
            "Source directories the latest walk could not list",
            labels=[LABEL],
        )
        lag = GaugeMetricFamily(
            f"{PREFIX}_lag_seconds", "Age of the oldest settled file not yet done", labels=[LABEL]
        )
        last_ok = GaugeMetricFamily(
            f"{PREFIX}_last_success_timestamp_seconds",
            "When the last successful cycle ended (Unix time)",
            labels=[LABEL],
        )
        duration = GaugeMetricFamily(
            f"{PREFIX}_cycle_duration_seconds", "How long the last cycle took", labels=[LABEL]
        )
        waiting = GaugeMetricFamily(
            f"{PREFIX}_tasks_waiting",
            "Tasks in flight that wait for someone (INACTIVE: renew the credentials)",
            labels=[LABEL],
        )
        deleted_files = CounterMetricFamily(
            f"{PREFIX}_deleted_files", "Source files deleted by cleanup", labels=[LABEL]
        )
        deleted_bytes = CounterMetricFamily(
            f"{PREFIX}_deleted_bytes", "Bytes of source files deleted by cleanup", labels=[LABEL]
        )
        source_free = GaugeMetricFamily(
            f"{PREFIX}_source_free_bytes",
            "Free bytes on the source's file system (jobs with cleanup)",
            labels=[LABEL],
        )
        healths = GaugeMetricFamily(
            f"{PREFIX}_health",
            "The job's health: 1 for its current state (ok, lagging, waiting, failing, stopped)",
            labels=[LABEL, "state"],
        )
        connected = GaugeMetricFamily(
            f"{PREFIX}_collection_connected",
            "A Globus job's collection is connected (0: Globus Connect Personal not running, "
            "paused, or the collection unreachable)",
            labels=[LABEL, "role"],
        )
        actions = GaugeMetricFamily(
            f"{PREFIX}_actions",
            "Actions (flow runs, commands) by state: pending, running, succeeded, failed",
            labels=[LABEL, "state"],
        )
        store = Store.open_readonly(self.state_dir)
        try:
            for job in self.config().jobs:
                current = health.assess(store, job).state
                for name in health.STATES:
                    healths.add_metric([job.name, name], 1.0 if name == current else 0.0)
                for coll in store.health.collections(job.name) if store else []:
                    connected.add_metric([job.name, coll.role], 0.0 if coll.problem else 1.0)
                job_id = store.jobs.find(job.name) if store else None
                if store is None or job_id is None:
                    continue
                c = store.jobs.counts(job_id)
                counts = (c.done, c.seen, c.queued, c.submitted, c.failed, c.skipped)
                for state, n in zip(FILE_STATES, counts, strict=True):
                    files.add_metric([job.name, state], n)
                unsendable = store.health.skipped_for(job_id, health.UNSENDABLE)[0]
                files.add_metric([job.name, "unsendable"], unsendable)  # also among skipped
                done_bytes.add_metric([job.name], c.done_bytes)
                life_files, life_bytes = store.jobs.life(job_id)
                confirmed_files.add_metric([job.name], life_files)
                confirmed_bytes.add_metric([job.name], life_bytes)
                unlistable.add_metric([job.name], store.unlistable.count(job_id))
                audit = store.audits.latest(job_id)
                if audit is not None and audit.error is None:
                    audit_missing.add_metric([job.name], audit.missing)
                    audit_different.add_metric([job.name], audit.different)
                    audit_at.add_metric([job.name], audit.finished)
                age = time.time() - c.oldest_settled if c.oldest_settled is not None else 0.0
                lag.add_metric([job.name], max(0.0, age))
                ok, took = store.cycles.times(job_id)
                if ok is not None:
                    last_ok.add_metric([job.name], ok)
                if took is not None:
                    duration.add_metric([job.name], took)
                stuck = sum(1 for b in store.batches.unresolved(job_id) if b.reason)
                waiting.add_metric([job.name], stuck)
                if job.actions.on_done:
                    by_state = store.actions.counts(job_id)
                    for state in ACTION_STATES:
                        actions.add_metric([job.name, state], by_state.get(state, 0))
                if job.cleanup.enabled:
                    totals = store.cleanup.totals(job_id)
                    deleted_files.add_metric([job.name], totals.files)
                    deleted_bytes.add_metric([job.name], totals.bytes)
                    with suppress(OSError):
                        source_free.add_metric([job.name], free_space(job.source)[0])
        finally:
            if store is not None:
                store.close()
        yield from (files, done_bytes, lag, last_ok, duration, waiting, healths, connected)
        yield from (deleted_files, deleted_bytes, source_free, actions)
        yield from (confirmed_files, confirmed_bytes, unlistable)
        yield from (audit_missing, audit_different, audit_at)


def registry(config: Callable[[], Config], state_dir: Path) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(config, state_dir))
    return reg


def serve(
    port: int, config: Callable[[], Config], state_dir: Path, addr: str = "127.0.0.1"
) -> None:
    """Serve /metrics on ``port`` from a daemon thread."""
    start_http_server(port, addr=addr, registry=registry(config, state_dir))


def write_file(path: Path, config: Config, state_dir: Path) -> None:
    """The node_exporter textfile-collector format, written atomically: to a hidden temporary
    file beside it (the collector reads only ``*.prom``), renamed over it. A failure leaves the
    previous file as it was; a temporary file that could not even be removed (a failing disk) is
    removed by the next write that succeeds."""
    data = generate_latest(registry(lambda: config, state_dir))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _sweep(path)


def _sweep(path: Path) -> None:
    """Remove the temporary files that earlier writers, now gone, could not remove."""
    for old in path.parent.glob(f".{path.name}.*.tmp"):
        pid = old.name[len(path.name) + 2 : -4]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # its writer is still at work
        except ProcessLookupError:
            pass
        except OSError:
            continue
        with contextlib.suppress(OSError):
            old.unlink()

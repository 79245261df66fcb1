"""Transports: where batches go. ``make_transport`` picks one for a job; ``base`` is the protocol.
May import: globus, store, model, errors, config; never sources or anything above them."""

from __future__ import annotations

from pathlib import Path

from globus_autosync.config import Config, Job
from globus_autosync.transports.base import Check, Item, Outcome, TaskReport, Transport
from globus_autosync.transports.local.transport import LocalTransport

__all__ = ["Check", "Item", "Outcome", "TaskReport", "Transport", "make_transport"]


def make_transport(job: Job, config: Config, state_dir: Path) -> Transport:
    if job.transport == "local":
        return LocalTransport(job)
    # here: the Globus transport and globus_sdk cost a local run 30 ms
    from globus_autosync.transports.globus import GlobusTransport

    return GlobusTransport(job, config, state_dir)

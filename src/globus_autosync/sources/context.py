"""What every part of one cycle of one job shares: the job, its store, tree and transport, the
cycle's clock. It lives here, the lowest layer that sees the store, the transport and the walk's
tree, so that cleanup/ and actions/ (above) take it as the engine (higher still) builds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from globus_autosync.config import Config, Job
from globus_autosync.sources.base import DirTree
from globus_autosync.store import Store
from globus_autosync.transports.base import Transport


def never() -> bool:
    """The ``should_stop`` of a cycle nothing stops."""
    return False


@dataclass(frozen=True, slots=True)
class CycleContext:
    """One cycle of one job: built once, when it starts, and handed to each of its steps."""

    job: Job
    config: Config
    state_dir: Path
    store: Store
    job_id: int
    tree: DirTree
    transport: Transport
    now: float  # when the cycle started (time.time())
    dry_run: bool = False
    should_stop: Callable[[], bool] = never

    @classmethod
    def start(
        cls,
        job: Job,
        config: Config,
        store: Store,
        transport: Transport,
        *,
        state_dir: Path | None = None,
        dry_run: bool = False,
        should_stop: Callable[[], bool] = never,
    ) -> CycleContext:
        """The context of a cycle starting now; adds the job to the store if it is new."""
        now = time.time()
        job_id = store.jobs.ensure(job.name)
        return cls(
            job=job,
            config=config,
            state_dir=state_dir or store.path.parent,
            store=store,
            job_id=job_id,
            tree=DirTree(store, job_id),
            transport=transport,
            now=now,
            dry_run=dry_run,
            should_stop=should_stop,
        )

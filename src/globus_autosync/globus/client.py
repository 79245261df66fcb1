"""A job's Transfer client, made on first use and shared by both Globus sides, and the pace of
its requests: every call goes through one error mapping (errors.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import globus_sdk
from globus_sdk.scopes import TransferScopes

from globus_autosync.config import Config, Job
from globus_autosync.globus import auth as globus_auth
from globus_autosync.globus.errors import ErrorHook, consent_collections, consenting, globus_errors
from globus_autosync.store.heartbeats import DESTINATION, beat

log = logging.getLogger(__name__)

T = TypeVar("T")


class Pace:
    """At most ``rate`` requests a second: each starts at least ``1/rate`` s after the last."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.gap, self.clock, self.sleep = 1.0 / rate, clock, sleep
        self.next = 0.0

    def wait(self) -> None:
        now = self.clock()
        if now < self.next:
            self.sleep(self.next - now)
            now = self.next
        self.next = now + self.gap


class TransferSession:
    """The Transfer client of one job (its login checked when first made), and its calls."""

    def __init__(self, job: Job, config: Config, state_dir: Path) -> None:
        self.job, self.config, self.state_dir = job, config, state_dir
        self.collections = [
            c for c in (job.globus.source_collection, job.globus.destination_collection) if c
        ]
        self._app: globus_sdk.GlobusApp | None = None
        self._client: globus_sdk.TransferClient | None = None

    @property
    def tc(self) -> globus_sdk.TransferClient:
        if self._client is None:
            app = globus_auth.make_app(self.config, self.state_dir)
            globus_auth.require_login(app)
            self._app, self._client = app, globus_sdk.TransferClient(app=app)
        return self._client

    def call(
        self,
        what: str,
        fn: Callable[[], T],
        hook: ErrorHook | None = None,
        side: str = DESTINATION,
    ) -> T:
        """One request (or a few) to Transfer, its errors mapped onto one line that names the
        job; a service account asks for a data_access consent it lacks, then tries again. The
        cycle's heartbeat says it waits on ``side``, and beats when the answer comes."""
        beat(side)
        with globus_errors(f"{self.job.name}: {what}", self.collections, hook=hook):
            answer = consenting(fn, self._ask_consent)
        beat(side)
        return answer

    def _ask_consent(self, err: globus_sdk.GlobusAPIError) -> bool:
        needed = consent_collections(err)
        if not needed:
            return False
        log.info("%s: asking for data access to %s", self.job.name, ", ".join(needed))
        for cid in needed:
            self.tc.add_app_data_access_scope(cid)
        # The stored token, got without that consent, would be used again as it is
        # (the SDK cannot see a client's consents): drop it, so a new one is asked for.
        if self._app is not None:
            self._app.token_storage.remove_token_data(TransferScopes.resource_server)
        return True

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._app is not None:
            self._app.close()
            self._app = None

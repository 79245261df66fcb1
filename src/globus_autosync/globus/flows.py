"""Globus Flows, through globus-sdk: start a run of a job's flow, find a run again by its tag,
look at a run. Every Globus error becomes one line (errors.py): an AuthError (a login or a
consent is missing: the exact command to run) or a TransportError (transient: tried again later).

``run_flow`` has no idempotency key: each run carries the unique tag of its journal row, the
start is never retried by the SDK, and after a crash or a start whose answer was lost the
flow's runs are listed, looking for that tag, before one is started again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import globus_sdk
from globus_sdk.scopes import FlowsScopes, Scope
from globus_sdk.transport import RetryCheckCollection, RetryCheckResult, RetryConfig, RetryContext

from globus_autosync.config import Config, Job
from globus_autosync.errors import AuthError, TransportError
from globus_autosync.globus import auth as globus_auth
from globus_autosync.globus.errors import (
    ErrorHook,
    consenting,
    describe,
    globus_errors,
    purged,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
SERVICE = "Globus Flows"  # who answered, in an error's line
# The Flows service keeps a run's state (its input, and what its steps add) under 200 kB
# (https://docs.globus.org/api/flows/limits/, "Maximum Run State Size"). A manifest whose input
# would pass half of that is split into several runs, leaving the other half to the flow.
INPUT_LIMIT = 100_000
LABEL_MAX = 64


def _never_again(ctx: RetryContext) -> RetryCheckResult:
    """Starting a run is not idempotent (no submission id): a POST whose answer was lost (a
    502/504, a dropped connection, a timeout) may have started the run, so the SDK must not
    send it again. Only a 429 is retried (the service did nothing); the rest is found by the
    run's tag before it is ever started again (Actions: STARTING, then ``find``)."""
    if ctx.exception is not None:
        return RetryCheckResult.do_not_retry  # the network: the request may have arrived
    if ctx.response is not None and ctx.response.status_code not in (401, 429):
        return RetryCheckResult.do_not_retry
    return RetryCheckResult.no_decision


def _start_retries() -> RetryConfig:
    """A client's retry settings whose checks begin with ``_never_again`` (the SDK adds its
    own checks after those a config already holds)."""
    checks = RetryCheckCollection()
    checks.register_check(_never_again)
    return RetryConfig(checks=checks)


def run_url(run_id: str) -> str:
    return f"https://app.globus.org/runs/{run_id}"


def consent_line(flow_id: str) -> str:
    if globus_auth.is_service_account():
        return (
            f"the service account may not start flow {flow_id}; add its client identity to the "
            "flow's starters (flow_starters) and give it access to the collections the flow uses"
        )
    return f"Globus needs your consent to start flow {flow_id}; run: globus-autosync login"


class FlowRunner:
    """The flow of one job: its clients, made on first use."""

    def __init__(self, job: Job, config: Config, state_dir: Path) -> None:
        assert job.actions.flow is not None
        self.job, self.config, self.state_dir, self.flow = job, config, state_dir, job.actions.flow
        self._app: globus_sdk.GlobusApp | None = None
        self._specific: globus_sdk.SpecificFlowClient | None = None
        self._flows: globus_sdk.FlowsClient | None = None

    @property
    def app(self) -> globus_sdk.GlobusApp:
        if self._app is None:
            with self._errors("credentials"):
                app = globus_auth.make_app(self.config, self.state_dir, flows=[self.flow])
                if not globus_auth.is_service_account() and app.login_required():
                    app.close()
                    raise AuthError(f"{self.job.name}: {consent_line(self.flow)}")
            self._app = app
        return self._app

    @property
    def specific(self) -> globus_sdk.SpecificFlowClient:
        if self._specific is None:
            scope = globus_auth.flow_scope(self.flow)
            self._specific = globus_sdk.SpecificFlowClient(
                self.flow, app=self.app, app_scopes=[scope], retry_config=_start_retries()
            )
        return self._specific

    @property
    def flows(self) -> globus_sdk.FlowsClient:
        if self._flows is None:
            self._flows = globus_sdk.FlowsClient(app=self.app, app_scopes=[FlowsScopes.run_status])
        return self._flows

    def _errors(self, what: str, first: ErrorHook | None = None) -> AbstractContextManager[None]:
        where = f"{self.job.name}: flow {self.flow}: {what}"

        def hook(err: globus_sdk.GlobusAPIError) -> Exception | None:
            if first is not None and (own := first(err)) is not None:
                return own
            if err.info.consent_required:  # `login` will ask for what the flow asked for
                required = err.info.consent_required.required_scopes or []
                globus_auth.note_flow_needs(self.state_dir, self.flow, required)
                return AuthError(f"{self.job.name}: {consent_line(self.flow)}")
            if err.http_status == 403:
                return AuthError(f"{where}: {consent_line(self.flow)} ({describe(err, SERVICE)})")
            return None

        return globus_errors(where, service=SERVICE, hook=hook)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self._errors(what):
            return consenting(fn, self._ask_consent)

    def _ask_consent(self, err: globus_sdk.GlobusAPIError) -> bool:
        """A service account consents by asking for the scopes itself."""
        consent = err.info.consent_required
        required = consent.required_scopes if consent else None
        if not required:
            return False
        log.info("%s: asking for the scopes flow %s needs", self.job.name, self.flow)
        self.app.add_scope_requirements({self.flow: [Scope.parse(s) for s in required]})
        self.app.token_storage.remove_token_data(self.flow)
        return True

    # -- the three calls ----------------------------------------------------------------------
    def start(self, body: dict[str, Any], label: str, tags: list[str]) -> str:
        result = self._call(
            "start a run",
            lambda: self.specific.run_flow(body, label=label[:LABEL_MAX], tags=tags),
        )
        return str(result["run_id"])

    def find(self, tag: str) -> dict[str, Any] | None:
        """The run of this flow that carries ``tag``, if the service has one. Every page is
        read: the Flows API documents no default order for its run list (the SDK's recorded
        answer lists the oldest first), so the run may be on any page."""

        def look() -> dict[str, Any] | None:
            pages = self.flows.paginated.list_runs(filter_flow_id=self.flow).pages()
            for page in pages:
                for run in page:
                    if tag in (run.get("tags") or []):
                        return dict(run)
            return None

        return self._call("look for a run started before a crash", look)

    def get(self, run_id: str) -> dict[str, Any]:
        """The run's document; raises Purged when the service no longer has it (Flows deletes
        a run 90 days after it ends)."""
        with self._errors(f"look at run {run_id}", purged(run_id)):
            return dict(consenting(lambda: self.flows.get_run(run_id), self._ask_consent).data)

    def check(self) -> tuple[bool, str]:
        """Whether the consent to start the flow is granted (the tokens are there and valid)."""
        try:
            self._call("credentials", lambda: self.flows.list_runs(filter_flow_id=self.flow))
        except (AuthError, TransportError) as err:
            return False, str(err).removeprefix(f"{self.job.name}: ")
        return True, f"flow {self.flow}: the consent to start its runs is granted"

    def close(self) -> None:
        for client in (self._specific, self._flows):
            if client is not None:
                client.close()
        self._specific = self._flows = None
        if self._app is not None:
            self._app.close()
            self._app = None


def run_failure(run: dict[str, Any]) -> str:
    details = run.get("details") or {}
    if isinstance(details, dict):
        text = details.get("description") or details.get("code")
        if text:
            return f"the run {run.get('status', 'FAILED')}: {str(text).splitlines()[0]}"
    return f"the run {run.get('status', 'FAILED')}"

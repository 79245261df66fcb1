"""Emulation of the Globus Flows API the SDK's FlowsClient and SpecificFlowClient use: start a run
of a flow (``POST /flows/<id>/run``), look at a run (``GET /runs/<id>``), list runs with their
tags (``GET /runs``, marker paging), resume a run.

Starting a run needs a token for the flow's own scope (resource server: the flow id); looking at
runs needs a token of the Flows service (resource server ``flows.globus.org``). Paths here are
relative to the Flows base URL (the emulator serves it under ``/flows-api/``). Not thread-safe on
its own: the emulator holds its lock around every call.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ._common import (
    Clock,
    HTTPError,
    JSONDict,
    Reply,
    Request,
    iso_time,
    list_order_key,
    new_request_id,
)
from .auth import DATA_ACCESS_SCOPE, FLOWS_RS, TRANSFER_SCOPE, TokenRecord

FLOW_SCOPE = "https://auth.globus.org/scopes/{0}/flow_{1}_user"


def flow_scope(flow_id: str) -> str:
    return FLOW_SCOPE.format(flow_id, flow_id.replace("-", "_"))


def flows_error(status: int, code: str, detail: str, **extra: Any) -> HTTPError:
    """An error shaped like the Flows API's: ``{"error": {"code", "detail"}, "debug_id"}`` (as
    recorded in globus_sdk.testing's flows/delete_run.py "conflict"); with ``extra`` (a
    ConsentRequired), the code is repeated at the top level beside the extra keys."""
    body: JSONDict = {"error": {"code": code, "detail": detail}, "debug_id": new_request_id()}
    if extra:
        body.update(code=code, **extra)
    return HTTPError(status, body)


@dataclass
class EmulatedRun:
    run_id: str
    flow_id: str
    label: str
    tags: list[str]
    body: JSONDict
    owner: str
    started: float
    outcome: str  # what it becomes once ``delay`` has passed: SUCCEEDED, FAILED, INACTIVE, ACTIVE
    delay: float
    status: str = "ACTIVE"
    completed: float | None = None
    details: JSONDict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # as the SDK's recorded run_flow answer (globus_sdk.testing flows/_common.py)
        self.details = {
            "code": "FlowStarting",
            "description": "The Flow is starting execution",
            "details": {"input": self.body},
        }

    def advance(self, now: float) -> None:
        if self.status != "ACTIVE" or now < self.started + self.delay:
            return
        self.status = self.outcome
        if self.outcome == "SUCCEEDED":  # as the SDK's recorded get_run (RUN_DETAILS)
            self.details = {
                "code": "FlowSucceeded",
                "description": "The Flow run reached a successful completion state",
                "output": {},
            }
        elif self.outcome == "FAILED":
            self.details = {"code": "ActionFailedException",
                            "description": "the analysis step failed: exit status 1"}  # fmt: skip
        elif self.outcome == "INACTIVE":
            self.details = {
                "code": "ConsentRequired",
                "description": "The run needs a consent to go on",
                "required_scope": TRANSFER_SCOPE,
            }
        if self.status in ("SUCCEEDED", "FAILED"):
            self.completed = now

    def document(self) -> JSONDict:
        return {
            "run_id": self.run_id, "action_id": self.run_id, "flow_id": self.flow_id,
            "flow_title": f"emulated flow {self.flow_id[:8]}", "label": self.label,
            "tags": list(self.tags), "status": self.status, "display_status": self.status,
            "start_time": iso_time(self.started),
            "completion_time": iso_time(self.completed) if self.completed else None,
            "run_owner": f"urn:globus:auth:identity:{self.owner}", "user_role": "run_owner",
            "created_by": f"urn:globus:auth:identity:{self.owner}", "details": dict(self.details),
            "flow_last_updated": iso_time(self.started), "run_managers": [], "run_monitors": [],
            "manage_by": [], "monitor_by": [],
        }  # fmt: skip


class FlowsService:
    """State and HTTP handlers of the emulated Flows service."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock if clock is not None else Clock()
        self.list_order: str | None = None  # None: newest first, as always here
        self.runs: dict[str, EmulatedRun] = {}
        self.outcomes: deque[str] = deque()  # of the next runs (default: SUCCEEDED)
        self.run_delay = 0.0  # seconds a run stays ACTIVE before its outcome
        self.page_size = 2  # runs per page of GET /runs: small, so that paging is exercised
        self.consent_required: dict[str, str] = {}  # flow id -> a collection it needs access to

    def handle(self, req: Request, path: str, token: TokenRecord | None) -> Reply:
        parts = path.strip("/").split("/")
        now = self.clock()
        if req.method == "POST" and len(parts) == 3 and parts[0] == "flows" and parts[2] == "run":
            return self._run(req, parts[1], token, now)
        if parts[0] == "runs":
            self._require(token, FLOWS_RS)
            if req.method == "GET" and len(parts) == 1:
                return self._list(req, token, now)
            run = self.runs.get(parts[1]) if len(parts) >= 2 else None
            if run is None or (token is not None and run.owner != token.identity_id):
                raise flows_error(404, "NOT_FOUND", f"No run {path}")
            if req.method == "GET" and len(parts) == 2:
                run.advance(now)
                return Reply(200, run.document())
            if req.method == "POST" and len(parts) == 3 and parts[2] == "resume":
                return Reply(200, self.resume(run.run_id).document())
        raise flows_error(404, "NOT_FOUND", f"Nothing is emulated at {req.method} {path}")

    @staticmethod
    def _require(token: TokenRecord | None, server: str) -> TokenRecord:
        if token is None:
            raise flows_error(401, "AUTHENTICATION_ERROR", "No valid bearer token")
        if token.resource_server != server:
            raise flows_error(
                403, "FORBIDDEN", f"The token is for {token.resource_server}, not {server}"
            )
        return token

    def _run(self, req: Request, flow_id: str, token: TokenRecord | None, now: float) -> Reply:
        token = self._require(token, flow_id)
        collection = self.consent_required.get(flow_id)
        if collection is not None:
            needed = DATA_ACCESS_SCOPE.format(collection)
            if needed not in token.dependencies:
                required = f"{flow_scope(flow_id)}[{TRANSFER_SCOPE}[*{needed}]]"
                # like the real service: the code and scopes at the top level, for the SDK
                raise flows_error(
                    403, "ConsentRequired", "Missing required data_access consent",
                    required_scopes=[required],
                    authorization_parameters={"session_message": "Missing consent",
                                              "required_scopes": [required]},
                )  # fmt: skip
        doc = req.json()
        body = doc.get("body")
        if not isinstance(body, dict):
            raise flows_error(422, "UNPROCESSABLE_ENTITY", "body must be an object")
        tags = doc.get("tags") or []
        run = EmulatedRun(
            run_id=str(uuid.uuid4()), flow_id=flow_id, label=str(doc.get("label") or ""),
            tags=[" ".join(str(t).split()) for t in tags], body=body, owner=token.identity_id,
            started=now, outcome=self.outcomes.popleft() if self.outcomes else "SUCCEEDED",
            delay=self.run_delay,
        )  # fmt: skip
        self.runs[run.run_id] = run
        return Reply(201, run.document())

    def _list(self, req: Request, token: TokenRecord | None, now: float) -> Reply:
        wanted = {f for v in req.query.get("filter_flow_id", []) for f in v.split(",") if f}
        mine = [
            r for r in reversed(list(self.runs.values()))  # newest first
            if (not wanted or r.flow_id in wanted)
            and (token is None or r.owner == token.identity_id)
        ]  # fmt: skip
        if self.list_order is not None:
            order = self.list_order
            mine.sort(key=lambda r: list_order_key(order, r.run_id, r.started))
        start = int(req.arg("marker") or 0)
        page = mine[start : start + self.page_size]
        for run in page:
            run.advance(now)
        more = start + self.page_size < len(mine)
        return Reply(200, {
            "runs": [r.document() for r in page], "limit": self.page_size,
            "has_next_page": more,
            "marker": str(start + self.page_size) if more else None,
        })  # fmt: skip

    def resume(self, run_id: str) -> EmulatedRun:
        run = self.runs[run_id]
        if run.status == "INACTIVE":
            run.status, run.outcome, run.details = "ACTIVE", "SUCCEEDED", {}
        return run

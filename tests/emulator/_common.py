"""Shared plumbing of the Globus emulator: requests, replies, errors, time formats."""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets
import string
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JSONDict = dict[str, Any]

_REQUEST_ID_ALPHABET = string.ascii_letters + string.digits


class Clock:
    """Model time of one emulator: the wall clock plus an offset tests move forward, so that
    hours of task life (deadlines, purges) pass in an instant."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Fault:
    """A request fault waiting for the requests it matches."""

    remaining: int
    path_prefix: str
    status: int | None  # None: drop the connection (unless ``delay`` is set)
    retry_after: int | None = None
    code: str | None = None
    delay: float = 0.0  # > 0: answer normally, but only after this many seconds
    method: str | None = None  # only requests with this method (any when None)
    skip: int = 0  # matching requests let through before the fault begins
    after: bool = False  # the request is carried out first, then its answer is lost

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and path.startswith(self.path_prefix)
            and (self.method is None or self.method == method.upper())
        )


LIST_ORDERS = ("newest", "oldest", "shuffled")


def list_order_key(order: str, ident: str, started: float) -> tuple[float, str]:
    """Sort key of one listed item for an order the service does not promise: ``oldest`` or
    ``newest`` first by start time, or ``shuffled`` (a fixed pseudo-random order, the same on
    every page so that paging stays whole)."""
    if order == "shuffled":
        return (0.0, hashlib.sha256(ident.encode()).hexdigest())
    return (started if order == "oldest" else -started, ident)


def new_request_id() -> str:
    """A short random id like the ``request_id`` of real Globus responses."""
    return "".join(secrets.choice(_REQUEST_ID_ALPHABET) for _ in range(9))


def iso_time(ts: float) -> str:
    """Task document time format: ``2021-09-02T18:04:47+00:00``."""
    return datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).replace(microsecond=0).isoformat()


def space_time(ts: float) -> str:
    """ls / event time format: ``2023-12-18 16:52:50+00:00``."""
    return (
        datetime.datetime.fromtimestamp(ts, tz=datetime.UTC)
        .replace(microsecond=0)
        .isoformat(sep=" ")
    )


def parse_time(value: str) -> float:
    """Parse an ISO 8601 date/time as sent by the SDK (naive values are taken as UTC)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


@dataclass(frozen=True)
class Request:
    """One HTTP request as seen by the emulator (path is unquoted, without the query)."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        if not values:
            return default
        return values[0]

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> JSONDict:
        try:
            doc = json.loads(self.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise HTTPError(
                400,
                {
                    "code": "ClientError.BadRequest",
                    "message": f"Invalid JSON body: {err}",
                    "request_id": new_request_id(),
                    "resource": self.path,
                },
            ) from err
        if not isinstance(doc, dict):
            raise HTTPError(
                400,
                {
                    "code": "ClientError.BadRequest",
                    "message": "The request body must be a JSON object",
                    "request_id": new_request_id(),
                    "resource": self.path,
                },
            )
        return doc

    def form(self) -> dict[str, str]:
        parsed = urllib.parse.parse_qs(
            self.body.decode("utf-8", errors="replace"), keep_blank_values=True
        )
        return {key: values[0] for key, values in parsed.items() if values}


@dataclass
class Reply:
    """An HTTP answer: a JSON body (or none), a status and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        return json.dumps(self.body).encode("utf-8")


class HTTPError(Exception):
    """Raised inside a handler to answer with an error document."""

    def __init__(self, status: int, body: JSONDict, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {body.get('code') or body.get('error')}")
        self.reply = Reply(status, body, dict(headers or {}))


def transfer_error(status: int, code: str, message: str, resource: str) -> HTTPError:
    """An error shaped like the Transfer API's: code, message, request_id, resource."""
    return HTTPError(
        status,
        {
            "code": code,
            "message": message,
            "request_id": new_request_id(),
            "resource": resource,
        },
    )

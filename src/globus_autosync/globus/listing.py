"""A directory of a collection, listed whole through ``operation_ls``, page by page."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, TypeVar

import globus_sdk

from globus_autosync.globus.errors import ErrorHook, describe
from globus_autosync.store.heartbeats import SOURCE

LS_PAGE = 100_000  # entries per operation_ls page: the most the service gives
T = TypeVar("T")


class Vanished(Exception):
    """The directory is not on the collection (any more)."""


class Unlistable(Exception):
    """Globus refuses to list this directory (permission denied, a path it refuses, an error of
    the storage behind the collection): the rest of the tree is listed, this one is tried again
    next cycle."""

    def __init__(self, message: str, denied: bool) -> None:
        super().__init__(message)
        self.denied = denied  # permission denied (403), not a fault of the collection's side


class TransferCalls(Protocol):
    """What a listing needs of a session (TransferSession): its client, and its calls."""

    @property
    def tc(self) -> Any: ...

    def call(
        self, what: str, fn: Callable[[], T], hook: ErrorHook | None = None, side: str = ...
    ) -> T: ...


def missing(path: str) -> ErrorHook:
    """Transfer's 404 says the directory is not there: Vanished."""

    def hook(err: globus_sdk.GlobusAPIError) -> Exception | None:
        found = isinstance(err, globus_sdk.TransferAPIError) and err.http_status == 404
        return Vanished(path) if found else None

    return hook


def unlistable(path: str) -> ErrorHook:
    """A source's directory: not there (Vanished), or refused for itself alone (Unlistable:
    any 4xx but a login, a consent or a pace; the storage's error), not a fault of the
    service."""

    def hook(err: globus_sdk.GlobusAPIError) -> Exception | None:
        if not isinstance(err, globus_sdk.TransferAPIError):
            return None
        if err.http_status == 404:
            return Vanished(path)
        if err.info.consent_required or err.http_status in (401, 429):
            return None  # a login or a consent to fix, or a pace to slow: not this directory's
        # Any other 4xx is the service refusing this one path (403 permission denied, 400
        # ClientError.InvalidPath for a name it will not take, 409 not a directory...): the
        # rest of the tree is still listed. A 5xx is the storage's own error only when its code
        # says so (ExternalError, EndpointError); any other is the service's, tried again.
        if 400 <= err.http_status < 500 or str(err.code).startswith(
            ("ExternalError", "EndpointError")
        ):
            return Unlistable(describe(err), err.http_status == 403)
        return None

    return hook


def list_entries(
    session: TransferCalls,
    collection: str,
    path: str,
    what: str,
    hook: ErrorHook,
    before: Callable[[], None] = lambda: None,
    side: str = SOURCE,
) -> list[dict[str, Any]]:
    """Every entry of one directory, page by page (``before`` each request); the errors as
    ``session.call`` maps them, ``hook`` first."""

    def page(offset: int) -> Any:
        return session.tc.operation_ls(collection, path=path, limit=LS_PAGE, offset=offset)

    out: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], int] = {}  # entries of earlier pages
    offset = 0
    number = 0
    while True:
        before()
        doc = session.call(what, partial(page, offset), hook, side)
        data: list[dict[str, Any]] = list(doc["DATA"])
        number += 1
        for entry in data:
            key = (
                entry.get("name"),
                entry.get("type"),
                entry.get("size"),
                entry.get("last_modified"),
            )
            if seen.get(key, number) != number:
                # on an earlier page too: the folder changed while it was paged and the
                # entry moved across a page boundary; not a second entry of that name
                continue
            seen[key] = number
            out.append(entry)
        # The answer carries "length" (entries on this page) and "total" (in the directory),
        # not the "limit" applied (globus-cli's recorded ls_results): the end is where the
        # entries read reach the total, or an empty page.
        offset += len(data)
        total = doc.get("total")
        if not data or (total is not None and offset >= int(total)):
            return out

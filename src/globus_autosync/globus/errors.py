"""One mapping of Globus errors onto ours, in one wording: a login, a consent or a refused
credential is an AuthError (fix it, then run again); anything else the service or the network
says is a TransportError (transient: the work stays queued). A caller that treats some answers
its own way (a flow's consent, a directory the source cannot list) passes a hook."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import globus_sdk
from globus_sdk.token_storage import TokenValidationError

from globus_autosync.errors import AuthError, Refused, TransportError
from globus_autosync.globus import auth as globus_auth

log = logging.getLogger(__name__)

T = TypeVar("T")
# an answer a caller handles its own way: the exception to raise instead, or None
ErrorHook = Callable[[globus_sdk.GlobusAPIError], Exception | None]
_SCOPE_COLLECTION = re.compile(r"/scopes/([0-9a-fA-F-]{36})/data_access")


def describe(err: globus_sdk.GlobusAPIError, service: str = "Globus") -> str:
    """One line: what Globus said, with its HTTP status, code and request id."""
    message = (err.message or "").strip().splitlines()
    text = message[0] if message else "no message"
    return f"{service} answered {err.http_status} {err.code} (request id {err.request_id}): {text}"


class Purged(Exception):
    """The service answered 404 for a task or a run it once had: its record is gone for good
    (Transfer keeps a task's record for a limited time; Flows deletes a run 90 days after it
    ends), so asking again will never answer."""


def purged(what: str) -> ErrorHook:
    """A 404 for ``what`` (a task id, a run id): Purged."""

    def hook(err: globus_sdk.GlobusAPIError) -> Exception | None:
        return Purged(what) if err.http_status == 404 else None

    return hook


def refused() -> ErrorHook:
    """A request the service refuses for good: any 4xx but 401 (a login), 429 (a pace) and a
    missing consent (each has its own handling) is a Refused."""

    def hook(err: globus_sdk.GlobusAPIError) -> Exception | None:
        if err.info.consent_required or not 400 <= err.http_status < 500:
            return None
        if err.http_status in (401, 408, 429) or isinstance(err, globus_sdk.AuthAPIError):
            return None
        return Refused(describe(err))

    return hook


def consent_command(collections: Sequence[str]) -> str:
    return "globus-autosync login " + " ".join(f"--collection {c}" for c in collections)


class ConsentNeeded(AuthError):
    """Globus wants a data_access consent for these collections before it touches them."""

    def __init__(self, message: str, collections: Sequence[str]) -> None:
        super().__init__(message)
        self.collections = list(collections)


def consent_message(what: str, needed: Sequence[str]) -> str:
    """What to do about a missing consent: the exact login command, or for a service account,
    the access its client identity lacks."""
    ids, prefix = ", ".join(needed), f"{what}: " if what else ""
    if globus_auth.is_service_account():
        return (
            f"{prefix}the service account may not access collection {ids}; give its client "
            "identity access to the collection (a role or an ACL), then run again"
        )
    return (
        f"{prefix}Globus needs your consent to access collection {ids}; "
        f"run: {consent_command(needed)}"
    )


def consent_collections(err: globus_sdk.GlobusAPIError) -> list[str]:
    """The collections whose data_access consent a ConsentRequired error asks for."""
    scopes = " ".join(err.info.consent_required.required_scopes or [])
    return sorted(set(_SCOPE_COLLECTION.findall(scopes)))


@contextmanager
def globus_errors(
    what: str,
    collections: Sequence[str] = (),
    hint: str | None = None,
    *,
    service: str = "Globus",
    hook: ErrorHook | None = None,
) -> Iterator[None]:
    """Turn any globus-sdk error into an AuthError or a TransportError whose line starts with
    ``what``. ``hint`` replaces the advice to log in; ``hook`` sees an error answer first."""
    try:
        yield
    except globus_sdk.GlobusAPIError as err:
        own = hook(err) if hook is not None else None
        if isinstance(own, Refused):
            raise Refused(f"{what}: {own}") from None
        if own is not None:
            raise own from None
        if err.info.consent_required:
            needed = consent_collections(err) or list(collections)
            raise ConsentNeeded(consent_message(what, needed), needed) from None
        if err.http_status == 401 or isinstance(err, globus_sdk.AuthAPIError):
            advice = hint or globus_auth.login_hint()
            raise AuthError(f"{what}: {advice} ({describe(err, service)})") from None
        raise TransportError(f"{what}: {describe(err, service)}") from None
    except TokenValidationError:
        raise AuthError(f"{what}: {hint or globus_auth.login_hint()}") from None
    except globus_sdk.NetworkError as err:
        raise TransportError(f"{what}: cannot reach Globus ({type(err).__name__}: {err})") from None


def consenting(fn: Callable[[], T], ask: Callable[[globus_sdk.GlobusAPIError], bool]) -> T:
    """``fn()``; a service account that meets a missing consent asks for it (``ask``: false
    when there is nothing it can ask for) and tries once more. A person consents at login."""
    try:
        return fn()
    except globus_sdk.GlobusAPIError as err:
        if not err.info.consent_required or not globus_auth.is_service_account():
            raise
        if not ask(err):
            raise
        return fn()

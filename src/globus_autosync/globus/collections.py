"""The collections' documents: Globus Connect Personal's state (connected, paused), and which
collections need a data_access consent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import globus_sdk

    from globus_autosync.globus.client import TransferSession


@dataclass(frozen=True, slots=True)
class CollectionDoc:
    """What a collection's document says of its state (Globus Connect Personal: connected,
    paused)."""

    role: str  # source, destination
    id: str
    name: str | None
    gcp: bool
    connected: bool | None = None
    paused: bool | None = None

    @classmethod
    def of(cls, role: str, cid: str, doc: Any) -> CollectionDoc:
        connected, paused = doc.get("gcp_connected"), doc.get("gcp_paused")
        gcp = bool(doc.get("is_globus_connect")) or connected is not None
        name = doc.get("display_name") or doc.get("canonical_name")
        return cls(role, cid, name, gcp, connected, paused)


def endpoint(session: TransferSession, role: str, cid: str) -> globus_sdk.GlobusHTTPResponse:
    """The document of one collection (``role``: "source collection", ...)."""
    return session.call(f"{role} {cid}", lambda: session.tc.get_endpoint(cid))


def collection_docs(session: TransferSession, src: str, dst: str) -> list[CollectionDoc]:
    """Both collections' documents: is either a Globus Connect Personal collection that is
    not connected, or paused? Raises TransportError or AuthError."""
    roles = (("source", src), ("destination", dst))
    return [CollectionDoc.of(r, c, endpoint(session, f"{r} collection", c)) for r, c in roles]


def needing_consent(tc: globus_sdk.TransferClient, ids: Iterable[str]) -> list[str]:
    """GCS v5 mapped collections (not high-assurance) need a data_access consent."""
    needed = []
    for cid in sorted(set(ids)):
        doc = tc.get_endpoint(cid)
        if doc.get("entity_type") == "GCSv5_mapped_collection" and not doc.get("high_assurance"):
            needed.append(cid)
    return needed

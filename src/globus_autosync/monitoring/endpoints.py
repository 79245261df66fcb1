"""Is a Globus job's collection there? Globus Connect Personal on the instrument PC may not be
running, or be paused; a task then sits ACTIVE ("Queued", GC_NOT_CONNECTED) until its deadline.

Once a cycle has polled its tasks, ``observe`` reads both collections' documents (at most every
``CHECK_EVERY`` seconds, whichever process asks: the time is in the store) and looks at the
faults the tasks showed. A collection that goes down is said once in the log, in one line with
what to do; ``status`` and the metrics show it until it clears, and its clearing is logged too.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from globus_autosync.config import Job
from globus_autosync.errors import AutosyncError
from globus_autosync.globus.collections import CollectionDoc
from globus_autosync.monitoring import health
from globus_autosync.store import Store
from globus_autosync.store import health as db
from globus_autosync.transports import Transport
from globus_autosync.transports.base import WatchesCollections

log = logging.getLogger(__name__)

CHECK_EVERY = 240.0  # seconds between two reads of a job's collection documents

_FAULT_WORDS = {
    "GC_NOT_CONNECTED": "is not connected (a task waits: GC_NOT_CONNECTED)",
    "GC_PAUSED": "is paused (a task waits: GC_PAUSED)",
    "CONNECT_FAILED": "cannot be reached (a task waits: CONNECT_FAILED)",
    "ENDPOINT_ERROR": "reports an error (a task waits: ENDPOINT_ERROR)",
}


def _doc_problem(doc: CollectionDoc) -> str | None:
    if not doc.gcp:
        return None
    if doc.paused:
        return "is paused (Globus Connect Personal)"
    if doc.connected is False:
        return "is not connected (Globus Connect Personal is not running)"
    return None


def observe(job: Job, store: Store, transport: Transport, now: float) -> int:
    """Update what the store knows of the job's collections; answers how many are down.
    Never raises for a collection that cannot be read: the cycle goes on."""
    if not isinstance(transport, WatchesCollections):
        return 0
    known = {c.role: c for c in store.health.collections(job.name)}
    rows = dict(known)
    if not known or any(now - c.checked >= CHECK_EVERY for c in known.values()):
        try:
            docs = transport.collections()
        except AutosyncError as err:
            log.debug("%s: cannot read the collections' documents: %s", job.name, err)
            docs = []
            # not again before CHECK_EVERY
            rows = {role: replace(c, checked=now) for role, c in rows.items()}
        for doc in docs:
            rows[doc.role] = db.CollectionRow(
                job.name, doc.role, doc.id, doc.name, doc.gcp, _doc_problem(doc), None, now
            )
    old = {role: c.problem for role, c in known.items()}
    faults = sorted(set(transport.task_faults.values()))
    # the faulty side is the Globus Connect Personal collection (the source if neither says)
    blamed = [r for r in ("source", "destination") if r in rows and rows[r].gcp] or ["source"]
    for role, c in rows.items():
        fault = _FAULT_WORDS[faults[0]] if faults and role in blamed else None
        rows[role] = replace(c, problem=c.doc_problem or fault)
    if not rows:
        return 0
    changed = [c for c in rows.values() if old.get(c.role) != c.problem]
    for c in changed:
        if c.problem:
            log.warning("%s: %s %s: %s", job.name, c.label, c.problem, health.collection_action(c))
        elif old.get(c.role):
            log.info("%s: %s is connected again", job.name, c.label)
    if changed or any(
        known.get(r) is None or known[r].checked != c.checked for r, c in rows.items()
    ):
        store.health.save_collections(list(rows.values()))
    return sum(1 for c in rows.values() if c.problem)

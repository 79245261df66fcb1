"""Source cleanup: the rules (pure), the deleter, the audit log.
May import: transports, sources, store, model, errors, config; never engine, monitoring or cli."""

from __future__ import annotations

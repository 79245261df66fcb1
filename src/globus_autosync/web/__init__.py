"""The status page, its JSON API and /metrics on one port (``serve``, ``watch --http``): read-only,
from the state database, with nothing loaded from another origin.
May import: monitoring, store, config, errors; never engine or cli (cli starts it)."""

from __future__ import annotations

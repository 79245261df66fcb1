"""What the tool says about itself: health, alerts, metrics, collection state, status documents.
May import: store, cleanup, transports.base, sources, model, errors, config; never engine or cli."""

from __future__ import annotations

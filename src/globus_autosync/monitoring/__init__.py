"""What the tool says about itself: health, alerts, metrics, collection state, status documents.
May import: cleanup, actions, sources, transports, globus, store, model, errors, config;
never engine, web or cli."""

from __future__ import annotations

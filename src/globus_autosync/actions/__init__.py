"""Actions once data is confirmed: the state machine, flows, commands, their supervisor.
May import: globus, store, model, errors, config; never engine or cli."""

from __future__ import annotations

"""The local file system as a source: listings, the walks, chunks of names, inotify.
May import: sources.base, model, store, errors, config."""

from __future__ import annotations

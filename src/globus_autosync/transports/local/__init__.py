"""A mounted directory as the destination: the copy pipeline, in-kernel copies, fsync windows.
May import: transports.base, errors, config."""

from __future__ import annotations

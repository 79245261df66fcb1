"""Fixtures for the tests of the network-share stand-in (a FUSE passthrough mount)."""

from __future__ import annotations

from .helpers import as_nobody, share  # noqa: F401  (the fixtures, for every module here)

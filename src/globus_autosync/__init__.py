"""globus-autosync: ship every new or modified file from a growing directory, unattended."""

from __future__ import annotations

__version__ = "0.1.0"

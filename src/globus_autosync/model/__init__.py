"""The shared vocabulary: a file's states and records, the pure planner, crash points.
May import: errors, config. No I/O."""

from __future__ import annotations

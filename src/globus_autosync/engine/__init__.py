"""Cycle orchestration: the per-job step, one cycle, batches, watch, baseline.
May import every folder but cli (and web); nothing imports it but cli."""

from __future__ import annotations

"""Fixtures of the emulator's own tests."""

from __future__ import annotations

from .fixtures import globus_emulator, globus_emulator_factory

__all__ = ["globus_emulator", "globus_emulator_factory"]

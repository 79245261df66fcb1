"""Test suite of globus-autosync."""

from __future__ import annotations

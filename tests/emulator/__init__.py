"""A local emulation of Globus Transfer v0.10, Globus Auth and Globus Flows, for tests."""

from __future__ import annotations

from .auth import DATA_ACCESS_SCOPE, TRANSFER_SCOPE, ScopeNode, parse_scopes
from .server import TransferEmulator
from .tasks import EmulatedTask, TaskItem

__all__ = [
    "DATA_ACCESS_SCOPE",
    "TRANSFER_SCOPE",
    "EmulatedTask",
    "ScopeNode",
    "TaskItem",
    "TransferEmulator",
    "parse_scopes",
]

"""The command line: one module per group of commands (``sync``: init, check, baseline, run,
watch; ``reports``: status, tasks; ``service``; ``globus``: login, logout, whoami; ``health``:
alert-test; ``actions``: retry-action), the shared ``context``, and ``app``: the group and
``main``, where every error becomes one line and an exit code. Thin: parse, call the engine,
render."""

from __future__ import annotations

from globus_autosync.cli.app import cli, main

__all__ = ["cli", "main"]

"""The command line: one module per group of commands, the shared ``context``, and ``app`` (the
group and ``main``, where every error becomes one line and an exit code). Thin: parse, call the
engine, render. May import every folder; nothing imports it but ``__main__``."""

from __future__ import annotations

from globus_autosync.cli.app import cli, main

__all__ = ["cli", "main"]

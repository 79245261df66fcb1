"""MkDocs hook: the configuration and commands references, generated from the code at each build
(the one table of keys, config/keys.py; the click commands), so that they cannot drift."""

from __future__ import annotations

from typing import Any

import click
from mkdocs.structure.files import File, Files

from globus_autosync.cli.app import COMMANDS, cli
from globus_autosync.config.reference import markdown

CONFIGURATION = "reference/configuration.md"
COMMANDS_PAGE = "reference/commands.md"

CONFIG_INTRO = """# Configuration reference

One TOML file (`globus-autosync init` writes it, every key commented out with its default),
any number of `[[job]]` tables, an optional `[alerts]` and `[globus]` table, and one state
database for all jobs. Durations take `s`, `m`, `h`, `d` (`"30s"`, `"5m"`, `"24h"`, `"2d"`);
relative paths are relative to the configuration file. An unknown key is an error with a
did-you-mean; so are a duplicate job name, a missing required key and a bad value: one line
naming the file, the job and the key, exit code 2. Check a file with `globus-autosync check`.

This page is generated from the table of keys in the code (`src/globus_autosync/config/keys.py`),
the same table that validates the file and writes `init`'s template. "Applies to" names the
transport or scan a key needs; "section" is where the job's record keeps it.

"""


def command_help(name: str) -> list[tuple[str, str]]:
    """(path, help text) of a command and of its subcommands, as ``--help`` prints them."""
    root = click.Context(cli, info_name="globus-autosync")
    command = cli.get_command(root, name)
    assert command is not None, name
    ctx = click.Context(command, info_name=name, parent=root)
    found = [(name, command.get_help(ctx))]
    if isinstance(command, click.Group):
        for sub in command.list_commands(ctx):
            subcommand = command.get_command(ctx, sub)
            assert subcommand is not None, sub
            sub_ctx = click.Context(subcommand, info_name=sub, parent=ctx)
            found.append((f"{name} {sub}", subcommand.get_help(sub_ctx)))
    return found


def commands_markdown() -> str:
    root = click.Context(cli, info_name="globus-autosync")
    out = [
        "# Commands reference",
        "",
        "Generated from the commands themselves: each section is what `--help` prints.",
        "Global options come before the command (`globus-autosync -c FILE --state-dir DIR run`).",
        "",
        "## globus-autosync",
        "",
        "```text",
        cli.get_help(root),
        "```",
        "",
    ]
    for name in sorted(COMMANDS):
        for path, text in command_help(name):
            out += [f"## {path}", "", "```text", text, "```", ""]
    return "\n".join(out)


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, CONFIGURATION, content=CONFIG_INTRO + markdown()))
    files.append(File.generated(config, COMMANDS_PAGE, content=commands_markdown()))
    return files

"""The generated references: every configuration key and every command has text, and the docs
build shows them all."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import click
import pytest

from globus_autosync.cli.app import COMMANDS, cli
from globus_autosync.config.keys import KEYS
from globus_autosync.config.reference import markdown, template

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands() -> list[tuple[str, click.Command, click.Context]]:
    """Every command and subcommand with the context its --help is printed in."""
    root = click.Context(cli, info_name="globus-autosync")
    found: list[tuple[str, click.Command, click.Context]] = [("globus-autosync", cli, root)]
    for name in sorted(COMMANDS):
        command = cli.get_command(root, name)
        assert command is not None, name
        ctx = click.Context(command, info_name=name, parent=root)
        found.append((name, command, ctx))
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                subcommand = command.get_command(ctx, sub)
                assert subcommand is not None, sub
                sub_ctx = click.Context(subcommand, info_name=sub, parent=ctx)
                found.append((f"{name} {sub}", subcommand, sub_ctx))
    return found


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{k.table}.{k.name}")
def test_every_key_has_text_in_the_reference(key: object) -> None:
    from globus_autosync.config.keys import ConfigKey

    assert isinstance(key, ConfigKey)
    assert len(key.meaning.split()) >= 3, f"{key.name}: its meaning is too short to help"
    rows = [line for line in markdown().splitlines() if line.startswith(f"| `{key.name}` |")]
    assert rows, f"{key.name} is missing from the configuration reference"
    assert any(key.meaning.replace("|", "\\|") in row for row in rows)
    assert f"{key.name} = " in template(), f"{key.name} is missing from init's template"


def test_every_command_has_help() -> None:
    missing = [name for name, command, _ in _commands() if not (command.help or "").strip()]
    assert missing == [], f"commands without help: {missing}"
    for name, command, _ in _commands():
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert (param.help or "").strip(), f"{name} {param.opts}: no help"


def test_the_generated_pages_hold_every_key_and_command() -> None:
    hooks = _hooks()
    page = hooks.commands_markdown()
    for name, _, _ in _commands()[1:]:
        assert f"\n## {name}\n" in page, name
    config_page = hooks.CONFIG_INTRO + markdown()
    for key in KEYS:
        assert f"`{key.name}`" in config_page


def test_the_navigation_holds_every_page() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    pages |= {"reference/configuration.md", "reference/commands.md"}
    assert {page for page in pages if f": {page}" not in nav} == set()


@pytest.mark.parametrize("name", [name for name, _, _ in _commands()])
def test_help_fits_one_screen_with_an_example_and_the_docs_page(name: str) -> None:
    command, ctx = next((c, x) for n, c, x in _commands() if n == name)
    ctx.terminal_width = ctx.max_content_width = 80
    text = command.get_help(ctx)
    lines = text.splitlines()
    assert len(lines) <= 40, f"{name} --help: {len(lines)} lines"
    assert max(len(line) for line in lines) <= 80, f"{name} --help: wider than 80 columns"
    assert re.search(r"Examples:\n +globus-autosync ", text), f"{name} --help: no example"
    pages = re.findall(r"docs/[\w/.-]+\.md", text)
    assert pages, f"{name} --help names no docs page"
    for page in pages:
        assert (ROOT / page).is_file() or page.startswith("docs/reference/"), page

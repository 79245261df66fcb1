"""The table of keys written out for people: ``init``'s commented example and the docs'
Markdown reference. Neither is on the path of a run."""

from __future__ import annotations

import json
from typing import Any

from globus_autosync.config.keys import KEYS, SCANS, TRANSPORTS, A, ConfigKey, G, J

_HEADER = """\
# globus-autosync configuration. One file, any number of [[job]]s.
# Durations take s, m, h, d ("30s", "5m", "24h", "2d"). Relative paths are relative to this file.
# Every key is shown, commented out, with its default or an example. Check the file with:
#   globus-autosync check
"""
_TITLES = {G: "[globus]", A: "[alerts]", J: "[[job]]"}
_HEADINGS = {
    "[globus]": "[globus]: the Globus app used by 'globus-autosync login' (see docs/globus.md)",
    "[alerts]": "[alerts]: where a message goes when a job's health leaves ok and when it returns\n"
    "(test them: globus-autosync alert-test)",
    "[[job]]": "[[job]]: a directory to send, its walk and its batches",
    "globus": "Globus (transport = \"globus\"; see docs/globus.md for 'globus-autosync login')",
    "cleanup": "Source cleanup (off unless delete_after or keep_free is set): a source file is\n"
    "deleted only once its copy is confirmed and verified at the destination, and it is\n"
    "unchanged since.",
    "actions": "Start the analysis when data is confirmed (see docs/actions.md)",
}


def toml_value(value: Any) -> str:
    """A value as TOML writes it (strings, numbers, booleans, arrays and inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    return str(value)


def _shown(key: ConfigKey) -> Any:
    return key.example if key.default is None or key.default in ([], {}) else key.default


def _applies(key: ConfigKey) -> str:
    where = []
    if key.transports != TRANSPORTS:
        where.append(f'transport = "{key.transports[0]}"')
    if key.scans != SCANS:
        where.append(f'scan = "{key.scans[0]}"')
    return " and ".join(where)


def _groups() -> list[tuple[str, list[ConfigKey]]]:
    """The keys by table, a job's keys by section, in the table's order."""
    groups: dict[str, list[ConfigKey]] = {}
    for key in KEYS:
        groups.setdefault(key.section or _TITLES[key.table], []).append(key)
    return list(groups.items())


def _comment(text: str) -> list[str]:
    return [f"# {line}" for line in text.splitlines()]


def template() -> str:
    """The commented example ``init`` writes: every key, with its default or an example."""
    lines = [_HEADER]
    for group, keys in _groups():
        lines += [*_comment(_HEADINGS[group])]
        if group in ("[globus]", "[alerts]"):
            lines.append(f"# {group}")
        elif group == "[[job]]":
            lines.append(group)
        for key in keys:
            only = _applies(key)
            lines += _comment(key.meaning + (f" (only with {only})" if only else ""))
            line = f"{key.name} = {toml_value(_shown(key))}"
            lines.append(line if key.required else f"# {line}")
        lines.append("")
    return "\n".join(lines)


def markdown() -> str:
    """The reference of every key as Markdown tables, one per table of the file."""
    out: list[str] = []
    for table in (J, A, G):
        out += [f"### `{_TITLES[table]}`", ""]
        out += ["| key | type | default | applies to | section | meaning |"]
        out += ["|---|---|---|---|---|---|"]
        for key in (k for k in KEYS if k.table == table):
            if key.required:
                default = "required"
            elif key.default is None:
                default = "unset"
            else:
                default = f"`{toml_value(key.default)}`"
            field = f"{key.section}.{key.field}" if key.section else key.field
            cells = [f"`{key.name}`", key.toml, default, _applies(key) or "all", field, key.meaning]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out)

"""Reading one table of the file by the table of keys: each value of its type, its default
when absent, and every error naming the file, the table and the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from globus_autosync.config.keys import ConfigKey
from globus_autosync.config.records import did_you_mean
from globus_autosync.config.units import parse_duration
from globus_autosync.errors import ConfigError

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TYPES: dict[str, type] = {
    "string": str,
    "duration": str,
    "size": str,
    "integer": int,
    "boolean": bool,
    "array": list,
    "table": dict,
}
_KIND_NAMES = {str: "a string", int: "a whole number", bool: "true or false", list: "a list"}


class Reader:
    """Reads one table of the file, naming the file, the table and the key in its errors."""

    def __init__(
        self, path: Path, where: str, table: dict[str, Any], keys: dict[str, ConfigKey]
    ) -> None:
        self.path, self.where, self.table, self.keys = path, where, table, keys

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.where}, key {key!r}: {message}")

    def check_keys(self) -> None:
        allowed = list(self.keys)
        for key in self.table:
            if key not in self.keys:
                raise self.fail(key, f"unknown key{did_you_mean(key, allowed)}")

    def get(self, key: str, required: bool = False) -> Any:
        """The key's TOML value, of its type; its default when absent."""
        spec = self.keys[key]
        if key not in self.table:
            if required:
                raise ConfigError(f"{self.path}: {self.where}: missing required key {key!r}")
            return spec.default
        return self._typed(key, _TYPES[spec.toml])

    def _typed(self, key: str, kind: type) -> Any:
        value = self.table[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise self.fail(key, f"expected {_KIND_NAMES.get(kind, kind.__name__)}, got {value!r}")
        return value

    def duration(self, key: str, minimum: float = 0.0) -> Any:
        """Seconds (float); None when absent and the key has no default."""
        text: str | None = self.get(key)
        if text is None:
            return None
        try:
            seconds = parse_duration(text)
        except ValueError as err:
            raise self.fail(key, str(err)) from None
        if seconds < minimum:
            raise self.fail(key, f"must be at least {minimum:g}s")
        return seconds

    def choice(self, key: str, choices: tuple[str, ...]) -> Any:
        value: str | None = self.get(key)
        if value is not None and value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def positive_int(self, key: str) -> int:
        value: int = self.get(key)
        if value < 1:
            raise self.fail(key, "must be a whole number of at least 1")
        return value

    def uuid(self, key: str, required: bool) -> str | None:
        value: str | None = self.get(key, required=required)
        if value is not None and not UUID.match(value):
            raise self.fail(key, f"{value!r} is not a collection id (a UUID)")
        return value

    def not_for(self, field: str, value: str) -> None:
        """Fail on the first key present that does not apply where ``field`` is ``value``."""
        for key, spec in self.keys.items():
            applies = spec.transports if field == "transport" else spec.scans
            if key in self.table and value not in applies:
                raise self.fail(key, f'applies only to {field} = "{applies[0]}"')

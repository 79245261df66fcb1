"""Sizes and durations: read from the configuration's text, and written for people.

The lowest module of the package beside ``errors``: any layer may use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKMGTP]i?)?B?\s*$")
_SIZE_UNITS = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}


def parse_duration(text: str) -> float:
    """``"30s"``, ``"5m"``, ``"24h"``, ``"7d"`` -> seconds. Raises ValueError."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit: 30s, 5m, 24h, 2d")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_size(text: str) -> int:
    """``"500GB"``, ``"2TB"``, ``"1.5TiB"``, ``"4096"`` -> bytes. Raises ValueError."""
    m = _SIZE.match(text)
    if not m or not text.strip():
        raise ValueError(f"{text!r} is not a size; write e.g. 500GB, 2TB or 1.5TiB")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2) or ""])


def human_bytes(n: float) -> str:
    """Bytes in decimal units, one decimal: ``"1.5 GB"``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class FreeSpace:
    """How much of the source's file system cleanup keeps free: a share of it, or bytes."""

    percent: float | None = None
    size: int | None = None

    def bytes_of(self, total: int) -> int:
        """The free bytes wanted on a file system of ``total`` bytes."""
        if self.percent is not None:
            return int(total * self.percent / 100)
        return self.size or 0

    def __str__(self) -> str:
        if self.percent is not None:
            return f"{self.percent:g}%"
        return human_bytes(self.size or 0)


def parse_free_space(text: str) -> FreeSpace:
    """``"20%"`` or a size -> FreeSpace. Raises ValueError."""
    stripped = text.strip()
    if stripped.endswith("%"):
        try:
            percent = float(stripped[:-1])
        except ValueError:
            percent = -1.0
        if not 0 < percent < 100:
            raise ValueError(f"{text!r}: a percentage must lie between 0% and 100%")
        return FreeSpace(percent=percent)
    size = parse_size(text)
    if size <= 0:
        raise ValueError(f"{text!r}: the space to keep free must be more than 0 bytes")
    return FreeSpace(size=size)

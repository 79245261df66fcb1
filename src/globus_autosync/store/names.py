"""Names as the store, the log and every report keep them: printable, and still one text per name.

A name is held in memory as Python reads it from the file system (``os.fsdecode``: a byte that is
not UTF-8 is a lone surrogate, ``\\udcXX``), which no SQLite text, JSON document or terminal takes.
``escape`` gives the text the store keeps and reports show; ``unescape`` gives the name back.

A name that needs nothing (no control character, no undecodable byte, no backslash that starts
one of the sequences below) is kept as it is, so the names of a detector, and every name a store
of an older version holds, are their own text. Any other name is escaped whole: ``\\`` for a
backslash, ``\\n`` and ``\\r``, ``\\xHH`` for a control character (below 80) or for an undecodable
byte (80 and above), ``\\uHHHH`` for a line separator of Unicode. An escaped text always holds
one of those sequences and a name kept as it is holds none, so no two names share a text.
"""

from __future__ import annotations

import re

_SEQUENCE = re.compile(r"\\(\\|n|r|x[0-9a-f]{2}|u[0-9a-f]{4})")
_ESCAPED = re.compile("[\\\\\x00-\x1f\x7f\x80-\x9f\u2028\u2029\udc80-\udcff]")
_NEEDS = re.compile("[\x00-\x1f\x7f\x80-\x9f\u2028\u2029\udc80-\udcff]")
_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_BACK = {"\\": "\\", "n": "\n", "r": "\r"}


def _one(m: re.Match[str]) -> str:
    c = m.group()
    named = _NAMED.get(c)
    if named is not None:
        return named
    code = ord(c)
    if code < 0x80:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def needs_escape(name: str) -> bool:
    """Whether a name's stored text differs from the name."""
    if name.isprintable() and "\\" not in name:
        return False
    return _NEEDS.search(name) is not None or _SEQUENCE.search(name) is not None


def escape(name: str) -> str:
    """The printable text of a name (or of a path: ``/`` is kept)."""
    if not needs_escape(name):
        return name
    return _ESCAPED.sub(_one, name)


def _back(m: re.Match[str]) -> str:
    s = m.group(1)
    named = _BACK.get(s)
    if named is not None:
        return named
    code = int(s[1:], 16)
    return chr(0xDC00 + code) if s[0] == "x" and code >= 0x80 else chr(code)


def unescape(text: str) -> str:
    """The name of a text ``escape`` gave."""
    if "\\" not in text or _SEQUENCE.search(text) is None:
        return text
    return _SEQUENCE.sub(_back, text)

"""Names as the store and the reports keep them (store.names): printable, one text per name, and
the name back from its text; and the confirmed listing (codec) of names that are not UTF-8."""

from __future__ import annotations

import itertools
import os

import pytest

from globus_autosync.store import codec
from globus_autosync.store.names import escape, unescape

LATIN = os.fsdecode(b"caf\xe9.dat")  # a Latin-1 name: its byte is not UTF-8

SHOWN = [
    ("frame_00001.tif", "frame_00001.tif"),  # a detector's name: itself
    ("café.dat", "café.dat"),  # UTF-8 is printable
    ("a\\b", "a\\b"),  # a backslash that starts no sequence: itself (as older stores keep it)
    (LATIN, "caf\\xe9.dat"),
    ("two\nlines", "two\\nlines"),
    ("cr\r", "cr\\r"),
    ("tab\there", "tab\\x09here"),
    ("a\\n", "a\\\\n"),  # looks like an escape: escaped, so that it is not read as a newline
    ("C:\\new" + os.fsdecode(b"\xff"), "C:\\\\new\\xff"),
    ("line\u2028sep", "line\\u2028sep"),
    ("-dash.dat", "-dash.dat"),
]


@pytest.mark.parametrize(("name", "shown"), SHOWN)
def test_a_name_shown_and_read_back(name: str, shown: str) -> None:
    assert escape(name) == shown
    assert unescape(shown) == name
    shown.encode("utf-8")  # SQLite, JSON and a terminal take it
    assert "\n" not in shown and "\r" not in shown


def test_no_two_names_share_a_text() -> None:
    """Every name of up to 4 characters from an alphabet of the hard cases."""
    alphabet = ["a", "\\", "x", "n", "u", "e", "9", "\n", "\udcff", "\x85", "/"]
    seen: dict[str, str] = {}
    for k in range(5):
        for chars in itertools.product(alphabet, repeat=k):
            name = "".join(chars)
            text = escape(name)
            assert unescape(text) == name
            assert seen.setdefault(text, name) == name


def test_a_confirmed_listing_holds_any_name() -> None:
    names = {LATIN: (5, 1), "two\nlines": (1, 2), "a\\xff": (3, 3), "\ue000": (4, 4), "é": (6, 6)}
    names[os.fsdecode(b"\xff")] = (8, 8)  # sorts after U+E000 as bytes, before it as str
    blob = codec.encode(names)
    assert codec.decode(blob) == names
    merged, files, _ = codec.merge(blob, {os.fsdecode(b"\xfe"): (7, 7)}, [LATIN])
    want = {**names, os.fsdecode(b"\xfe"): (7, 7)}
    del want[LATIN]
    assert codec.decode(merged) == want and files == len(want)
    assert merged == codec.encode(want)  # the same bytes, in the same (byte) order
    assert codec.lookup(merged, ["two\nlines", os.fsdecode(b"\xfe"), LATIN]) == {
        "two\nlines": (1, 2),
        os.fsdecode(b"\xfe"): (7, 7),
    }

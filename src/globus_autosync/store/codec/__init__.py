"""The compact form of a directory's confirmed listing (a few bytes a file): ``format`` encodes
and decodes it whole; ``search`` finds names in it and ``merge`` changes a few of them, each
decoding only the names near them, so that a directory of a million files never becomes a
million Python objects.
May import: nothing of the package (the standard library only).
"""

from __future__ import annotations

from globus_autosync.store.codec.format import RESTART, count, decode, encode
from globus_autosync.store.codec.merge import merge
from globus_autosync.store.codec.search import NameIndex, NameSet, find, index, lookup, name_set

__all__ = [
    "RESTART",
    "NameIndex",
    "NameSet",
    "count",
    "decode",
    "encode",
    "find",
    "index",
    "lookup",
    "merge",
    "name_set",
]

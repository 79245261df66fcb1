"""Finding names in a confirmed listing without making a Python object of each file: a table of
the hashes of its names (``name_set``, 16 bytes a name; ``index``, with their positions), or the
values of a few names (``lookup``, ``find``), decoding only the names near them.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Collection
from itertools import accumulate

from globus_autosync.store.codec.format import (
    RESTART,
    Column,
    count,
    iter_names,
    open_parts,
    read_deltas,
    restarts,
)


class NameSet:
    """Names, by this process's ``hash`` of them, in an open-addressing table of 64-bit slots at
    most half full: 16 bytes a name. Equal hashes are taken for equal names (a chance of about
    n / 2**64 for each name looked up; a full walk then still compares the size and mtime). Never
    stored or sent to another process: ``hash`` differs between interpreters."""

    def __init__(self, size: int) -> None:
        slots = 1 << max(4, (2 * size).bit_length())
        self.mask = slots - 1
        self.table = array("q", bytes(8 * slots))
        self.size = 0

    def add(self, name: str | bytes) -> None:
        h = hash(name) or 1
        t, mask = self.table, self.mask
        i = h & mask
        while t[i]:
            i = (i + 1) & mask
        t[i] = h
        self.size += 1

    def __contains__(self, name: object) -> bool:
        h = hash(name) or 1
        t, mask = self.table, self.mask
        i = h & mask
        while True:
            v = t[i]
            if v == h:
                return True
            if not v:
                return False
            i = (i + 1) & mask

    def __len__(self) -> int:
        return self.size


class NameIndex(NameSet):
    """A NameSet that also gives each name's position in the listing: 24 bytes a name."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.at = array("i", bytes(4 * len(self.table)))

    def find(self, name: str) -> int:
        """The name's position in the listing, or -1."""
        h = hash(name) or 1
        t, mask = self.table, self.mask
        i = h & mask
        while True:
            v = t[i]
            if v == h:
                return self.at[i]
            if not v:
                return -1
            i = (i + 1) & mask


def index(blob: bytes | None) -> tuple[NameIndex, array[int], array[int]]:
    """A confirmed listing as a NameIndex and its sizes and mtimes (arrays by position): about
    40 bytes a file, against some 300 for ``decode``."""
    n = count(blob)
    names = NameIndex(n)
    if not blob or not n:
        return names, array("q"), array("q")
    _, _, _, body = open_parts(blob, values=False)
    t, at, mask = names.table, names.at, names.mask
    ascii = body.isascii()
    for position, name in enumerate(iter_names(body)):
        h = (hash(name) if ascii else hash(name.decode("utf-8", "surrogateescape"))) or 1
        i = h & mask
        while t[i]:
            i = (i + 1) & mask
        t[i] = h
        at[i] = position
    names.size = n
    del body
    _, size_data, mtime_data, _ = open_parts(blob, names=False)
    sizes = array("q", accumulate(read_deltas(size_data, n)))
    del size_data
    deltas = read_deltas(mtime_data, n)
    del mtime_data
    return names, sizes, array("q", accumulate(deltas))


def name_set(blob: bytes | None) -> NameSet:
    """The names of a confirmed listing, as a NameSet (read a chunk at a time)."""
    names = NameSet(count(blob))
    if not blob:
        return names
    n, _, _, body = open_parts(blob, values=False)
    # the table filled here, inline: a method call a name costs 15 %
    t, mask = names.table, names.mask
    ascii = body.isascii()  # an ASCII name hashes as its str does; others are decoded
    for name in iter_names(body):
        h = (hash(name) if ascii else hash(name.decode("utf-8", "surrogateescape"))) or 1
        i = h & mask
        while t[i]:
            i = (i + 1) & mask
        t[i] = h
    names.size = n
    return names


def lookup(blob: bytes | None, wanted: Collection[str]) -> dict[str, tuple[int, int]]:
    """The (size, mtime_ns) of the names of ``wanted`` that a confirmed listing holds (only the
    names near them are decoded, or, for many names, the names without the values)."""
    return find(blob, wanted)[0]


def find(
    blob: bytes | None, values_of: Collection[str], names_of: Collection[str] = ()
) -> tuple[dict[str, tuple[int, int]], set[str]]:
    """The (size, mtime_ns) of the names of ``values_of`` that a confirmed listing holds, and
    which names of both ``values_of`` and ``names_of`` it holds, reading the listing once."""
    if not blob or not (values_of or names_of):
        return {}, set()
    n, _, _, body = open_parts(blob, values=False)
    valued = {w.encode("utf-8", "surrogateescape") for w in values_of}
    want = sorted(valued.union(w.encode("utf-8", "surrogateescape") for w in names_of))
    if len(want) > 4 * n // RESTART:  # about every block holds some: read them all, once
        wanted_set = set(want)
        found = [(i, name) for i, name in enumerate(iter_names(body)) if name in wanted_set]
    else:
        found = _in_blocks(body, want)
    del body
    names = {name.decode("utf-8", "surrogateescape") for _, name in found}
    found = [(i, name) for i, name in found if name in valued]
    if not found:
        return {}, names
    _, size_data, mtime_data, _ = open_parts(blob)
    sizes, mtimes = Column(size_data, n), Column(mtime_data, n)
    values = {
        name.decode("utf-8", "surrogateescape"): (sizes.value(i), mtimes.value(i))
        for i, name in found
    }
    return values, names


def _in_blocks(body: bytes, want: list[bytes]) -> list[tuple[int, bytes]]:
    """[(position, name)] of the names of ``want`` (sorted) found, each block between two names
    stored whole decoded only as far as the last name wanted in it."""
    starts, heads = restarts(body)
    found: list[tuple[int, bytes]] = []
    counted, before = 0, 0  # names before starts[counted]: counted on as the blocks go up
    i, total = 0, len(want)
    while i < total:
        j = bisect_right(heads, want[i]) - 1
        if j < 0:
            i += 1
            continue
        last = total if j + 1 == len(heads) else bisect_left(want, heads[j + 1], i)
        group = want[i:last]  # the names wanted that sort into block j
        i = last
        stop = starts[j + 1] - 1 if j + 1 < len(starts) else len(body)
        before += body.count(b"\0", starts[counted], starts[j])
        counted = j
        prev, top = b"", group[-1]
        g, gn = 0, len(group)
        for k, piece in enumerate(body[starts[j] : stop].split(b"\0")):
            prev = prev[: piece[0] - 1] + piece[1:]
            while g < gn and group[g] < prev:
                g += 1  # not in the listing
            if g < gn and group[g] == prev:
                found.append((before + k, prev))
                g += 1
            if prev >= top or g == gn:
                break
    return found

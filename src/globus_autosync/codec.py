"""The compact form of a directory's confirmed listing: a few bytes per file.

Names are sorted and front-coded (the length of the prefix shared with the previous name, then
the rest), joined with NUL; sizes and mtimes become deltas between neighbours (sequential
detector files differ little), stored as int64 with their bytes transposed so that the mostly-zero
high bytes line up, and the whole is zlib-compressed. Encoding and decoding run at C speed.

A directory of a million files must not become a million Python objects (about 150 bytes each):
``known`` reads only the names, into a table of their hashes (16 bytes a name), with the sizes
and mtimes of the few names asked for; ``lookup`` gives only those; ``merge`` adds or replaces a
few files without decoding the others. Each streams the names a chunk at a time.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from collections.abc import Collection, Iterator
from itertools import accumulate

_MAGIC = 1  # format version of the blob, first byte
_HEADER = struct.Struct("<BI")


_CHUNK = 1 << 18  # bytes of front-coded names split at once


def _shuffle(values: list[int]) -> bytes:
    deltas = [b - a for a, b in zip([0, *values], values, strict=False)]
    return _shuffle_deltas(array("q", deltas))


def _shuffle_deltas(deltas: array[int]) -> bytes:
    raw = deltas.tobytes()
    return b"".join(raw[i::8] for i in range(8))


def _deltas(data: bytes, count: int) -> array[int]:
    raw = bytearray(8 * count)
    for i in range(8):
        raw[i::8] = data[i * count : (i + 1) * count]
    deltas = array("q")
    deltas.frombytes(raw)
    return deltas


def _unshuffle(data: bytes, count: int) -> list[int]:
    return list(accumulate(_deltas(data, count)))


def _piece(prev: bytes, name: bytes) -> bytes:
    """``name`` front-coded after ``prev``: the shared length + 1 (never a NUL), the rest."""
    # the shared prefix's length, from the highest differing byte of the two as integers
    n = min(len(prev), len(name))
    diff = int.from_bytes(prev[:n], "big") ^ int.from_bytes(name[:n], "big")
    shared = min(n - (diff.bit_length() + 7) // 8, 254)
    return b"%c%b" % (shared + 1, name[shared:])


def _front_code(names: list[bytes]) -> bytes:
    out: list[bytes] = []
    prev = b""
    for name in names:
        out.append(_piece(prev, name))
        prev = name
    return b"\0".join(out)


def _spans(body: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(start, end, name) of each front-coded name, in order, a chunk of the body at a time."""
    prev = b""
    pos, size = 0, len(body)
    while pos < size:
        cut = body.find(b"\0", pos + _CHUNK)
        if cut < 0:
            cut = size
        for piece in body[pos:cut].split(b"\0"):
            end = pos + len(piece)
            prev = prev[: piece[0] - 1] + piece[1:]
            yield pos, end, prev
            pos = end + 1


def _front_decode(body: bytes) -> list[str]:
    names: list[str] = []
    prev = b""
    for piece in body.split(b"\0"):
        prev = prev[: piece[0] - 1] + piece[1:]
        names.append(prev.decode("utf-8"))
    return names


def encode(listing: dict[str, tuple[int, int]]) -> bytes:
    """{name: (size, mtime_ns)} -> bytes."""
    names = sorted(listing)
    sizes = [listing[n][0] for n in names]
    mtimes = [listing[n][1] for n in names]
    body = _front_code([n.encode("utf-8") for n in names])
    payload = _shuffle(sizes) + _shuffle(mtimes) + body
    return _HEADER.pack(_MAGIC, len(names)) + zlib.compress(payload, 9)


def decode(blob: bytes | None) -> dict[str, tuple[int, int]]:
    """bytes -> {name: (size, mtime_ns)}; None or empty -> {}."""
    if not blob:
        return {}
    magic, count = _HEADER.unpack_from(blob)
    if magic != _MAGIC:
        raise ValueError(f"unknown listing format {magic}")
    payload = zlib.decompress(blob[_HEADER.size :])
    if count == 0:
        return {}
    sizes = _unshuffle(payload[: 8 * count], count)
    mtimes = _unshuffle(payload[8 * count : 16 * count], count)
    names = _front_decode(payload[16 * count :])
    return dict(zip(names, zip(sizes, mtimes, strict=True), strict=True))


def count(blob: bytes | None) -> int:
    """How many files a confirmed listing holds, without decoding it."""
    if not blob:
        return 0
    return int(_HEADER.unpack_from(blob)[1])


def _open(blob: bytes) -> tuple[int, bytes]:
    magic, n = _HEADER.unpack_from(blob)
    if magic != _MAGIC:
        raise ValueError(f"unknown listing format {magic}")
    return n, zlib.decompress(blob[_HEADER.size :])


class NameSet:
    """Names, by this process's ``hash`` of them, in an open-addressing table of 64-bit slots at
    most half full: 16 bytes a name. Equal hashes are taken for equal names (a chance of about
    n / 2**64 for each name looked up; the full walk compares the names themselves). Never
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


def _scan(
    blob: bytes | None, wanted: Collection[str], names: NameSet | None
) -> dict[str, tuple[int, int]]:
    if not blob:
        return {}
    n, payload = _open(blob)
    want = {w.encode("utf-8", "surrogateescape") for w in wanted}
    found: list[tuple[int, bytes]] = []
    add = names.add if names is not None else None
    for index, (_, _, name) in enumerate(_spans(payload[16 * n :])):
        if add is not None:
            # an ASCII name hashes as its str does; any other is decoded first
            add(name if name.isascii() else name.decode("utf-8"))
        if name in want:
            found.append((index, name))
    if not found:
        return {}
    sizes, mtimes = _deltas(payload[: 8 * n], n), _deltas(payload[8 * n : 16 * n], n)
    out: dict[str, tuple[int, int]] = {}
    at, size, mtime = 0, 0, 0
    for index, name in found:  # in order: prefix sums, at C speed
        size += sum(sizes[at : index + 1])
        mtime += sum(mtimes[at : index + 1])
        at = index + 1
        out[name.decode("utf-8")] = (size, mtime)
    return out


def known(
    blob: bytes | None, wanted: Collection[str] = ()
) -> tuple[NameSet, dict[str, tuple[int, int]]]:
    """The names of a confirmed listing (as a NameSet), and the (size, mtime_ns) of those of
    ``wanted`` it holds."""
    names = NameSet(count(blob))
    return names, _scan(blob, wanted, names)


def lookup(blob: bytes | None, wanted: Collection[str]) -> dict[str, tuple[int, int]]:
    """The (size, mtime_ns) of the names of ``wanted`` that a confirmed listing holds."""
    return _scan(blob, wanted, None) if wanted else {}


def merge(blob: bytes | None, files: dict[str, tuple[int, int]]) -> tuple[bytes, int, int]:
    """A confirmed listing with ``files`` added or replaced: (blob, files, total size), without
    decoding the files it keeps (the same bytes as ``encode`` of the merged listing)."""
    if not blob or not count(blob):
        merged = encode(files)
        return merged, len(files), sum(size for size, _ in files.values())
    n, payload = _open(blob)
    body = payload[16 * n :]
    updates = sorted((name.encode("utf-8"), stats) for name, stats in files.items())
    chunks: list[bytes] = []  # of the new body, joined with NUL
    at: list[tuple[int, bool, tuple[int, int]]] = []  # (old index, replaces it, stats)
    run = 0  # where the old pieces not yet in chunks start
    prev = b""  # the last name of the new listing so far
    u = 0
    for index, (start, end, name) in enumerate(_spans(body)):
        if u < len(updates) and updates[u][0] <= name:
            inserted = False
            while u < len(updates) and updates[u][0] < name:
                if run < start:
                    chunks.append(body[run : start - 1])
                run = start
                new, stats = updates[u]
                chunks.append(_piece(prev, new))
                at.append((index, False, stats))
                prev, u, inserted = new, u + 1, True
            if u < len(updates) and updates[u][0] == name:
                at.append((index, True, updates[u][1]))
                u += 1
            if inserted:  # this name now follows another one
                chunks.append(_piece(prev, name))
                run = end + 1
        prev = name
    if run < len(body):
        chunks.append(body[run:])
    for new, stats in updates[u:]:
        chunks.append(_piece(prev, new))
        at.append((n, False, stats))
        prev = new
    sizes = _merge_values(_deltas(payload[: 8 * n], n), n, [(i, r, s[0]) for i, r, s in at])
    mtimes = _merge_values(_deltas(payload[8 * n : 16 * n], n), n, [(i, r, s[1]) for i, r, s in at])
    total = n + sum(not r for _, r, _ in at)
    data = _shuffle_deltas(sizes) + _shuffle_deltas(mtimes) + b"\0".join(chunks)
    merged = _HEADER.pack(_MAGIC, total) + zlib.compress(data, 9)
    return merged, total, sum(accumulate(sizes))


def _merge_values(deltas: array[int], n: int, at: list[tuple[int, bool, int]]) -> array[int]:
    """The deltas of a value column with values inserted before, or put in place of, the old
    values at the given indexes (in order)."""
    out = array("q")
    i = 0  # the next old value to copy
    value = 0  # the value of old index i - 1
    last = 0  # the last value written
    for index, replaces, new in at:
        if index > i:
            first = value + deltas[i]
            out.append(first - last)
            out.extend(deltas[i + 1 : index])
            value += sum(deltas[i:index])
            last = value
            i = index
        out.append(new - last)
        last = new
        if replaces:
            value += deltas[i]
            i += 1
    if i < n:
        out.append(value + deltas[i] - last)
        out.extend(deltas[i + 1 :])
    return out

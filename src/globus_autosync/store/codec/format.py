"""The compact form of a directory's confirmed listing, a few bytes a file: encoding and decoding
it whole, and the pieces ``search`` and ``merge`` read it by.

Names are sorted and front-coded (the length of the prefix shared with the previous name, then
the rest), joined with NUL; sizes and mtimes become deltas between neighbours (sequential
detector files differ little), stored as int64 with their bytes transposed so that the mostly-zero
high bytes line up, and the whole is zlib-compressed. Encoding and decoding run at C speed.

About one name in ``RESTART`` (chosen by its CRC, so that an insertion moves no other) is stored
whole: such a piece follows a NUL with the byte 1 (shared prefix 0), so the restart points are
found at C speed, and the names between two of them are all a search or a merge decodes. (A
listing written before restart points still decodes, and is searched from the nearest name stored
whole by chance; every merge leaves more of them.)
"""

from __future__ import annotations

import re
import struct
import zlib
from array import array
from collections.abc import Iterator
from itertools import accumulate

MAGIC = 1  # format version of the blob, first byte
HEADER = struct.Struct("<BI")


_CHUNK = 1 << 18  # bytes of front-coded names split at once
RESTART = 64  # one name in about this many is stored whole (a restart point)


def _shuffle(values: list[int]) -> bytes:
    deltas = [b - a for a, b in zip([0, *values], values, strict=False)]
    return _shuffle_deltas(array("q", deltas))


def _shuffle_deltas(deltas: array[int]) -> bytes:
    raw = deltas.tobytes()
    return b"".join(raw[i::8] for i in range(8))


def read_deltas(data: bytes, count: int) -> array[int]:
    raw = bytearray(8 * count)
    for i in range(8):
        raw[i::8] = data[i * count : (i + 1) * count]
    deltas = array("q")
    deltas.frombytes(raw)
    return deltas


def _unshuffle(data: bytes, count: int) -> list[int]:
    return list(accumulate(read_deltas(data, count)))


def piece(prev: bytes, name: bytes) -> bytes:
    """``name`` front-coded after ``prev``: the shared length + 1 (never a NUL), the rest."""
    if zlib.crc32(name) % RESTART == 0:
        return b"\x01" + name  # a restart point
    # the shared prefix's length, from the highest differing byte of the two as integers
    n = min(len(prev), len(name))
    diff = int.from_bytes(prev[:n], "big") ^ int.from_bytes(name[:n], "big")
    shared = min(n - (diff.bit_length() + 7) // 8, 254)
    return b"%c%b" % (shared + 1, name[shared:])


def front_code(names: list[bytes], prev: bytes = b"") -> bytes:
    """The names front-coded, the first after ``prev`` (the name before them, if any)."""
    out: list[bytes] = []
    for name in names:
        out.append(piece(prev, name))
        prev = name
    return b"\0".join(out)


def iter_names(body: bytes) -> Iterator[bytes]:
    """Each front-coded name, in order, a chunk of the body at a time."""
    prev = b""
    pos, size = 0, len(body)
    while pos < size:
        cut = body.find(b"\0", pos + _CHUNK)
        if cut < 0:
            cut = size
        for piece in body[pos:cut].split(b"\0"):
            prev = prev[: piece[0] - 1] + piece[1:]
            yield prev
        pos = cut + 1


_WHOLE = re.compile(rb"\0\x01([^\0]*)")  # a piece stored whole (shared prefix 0), its name


def restarts(body: bytes) -> tuple[list[int], list[bytes]]:
    """The offsets of the names stored whole, and those names (in order)."""
    if not body:
        return [], []
    end = body.find(b"\0")
    starts, heads = [0], [body[1:] if end < 0 else body[1:end]]
    for m in _WHOLE.finditer(body):
        starts.append(m.start() + 1)
        heads.append(m.group(1))
    return starts, heads


def block(body: bytes, begin: int, stop: int) -> list[bytes]:
    """The names of the pieces in body[begin:stop], the first of them stored whole."""
    names: list[bytes] = []
    prev = b""
    if stop > begin:
        for piece in body[begin:stop].split(b"\0"):
            prev = prev[: piece[0] - 1] + piece[1:]
            names.append(prev)
    return names


def _front_decode(body: bytes) -> list[str]:
    names: list[str] = []
    prev = b""
    for piece in body.split(b"\0"):
        prev = prev[: piece[0] - 1] + piece[1:]
        names.append(prev.decode("utf-8", "surrogateescape"))
    return names


def encode(listing: dict[str, tuple[int, int]]) -> bytes:
    """{name: (size, mtime_ns)} -> bytes."""
    names = sorted(listing)
    raw = [n.encode("utf-8", "surrogateescape") for n in names]
    if not all(map(str.isascii, names)):  # an undecodable byte does not sort as its str does
        order = sorted(range(len(names)), key=raw.__getitem__)
        names, raw = [names[i] for i in order], [raw[i] for i in order]
    sizes = [listing[n][0] for n in names]
    mtimes = [listing[n][1] for n in names]
    body = front_code(raw)
    payload = _shuffle(sizes) + _shuffle(mtimes) + body
    return HEADER.pack(MAGIC, len(names)) + zlib.compress(payload, 9)


def decode(blob: bytes | None) -> dict[str, tuple[int, int]]:
    """bytes -> {name: (size, mtime_ns)}; None or empty -> {}."""
    if not blob:
        return {}
    magic, count = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError(f"unknown listing format {magic}")
    payload = zlib.decompress(blob[HEADER.size :])
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
    return int(HEADER.unpack_from(blob)[1])


def open_parts(
    blob: bytes, values: bool = True, names: bool = True
) -> tuple[int, bytes, bytes, bytes]:
    """(files, sizes, mtimes, names): the three parts of a listing, each decompressed on its own
    (no copy of the whole); the parts not asked for are b""."""
    magic, n = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError(f"unknown listing format {magic}")
    unzip = zlib.decompressobj()
    sizes = unzip.decompress(blob[HEADER.size :], 8 * n)
    mtimes = unzip.decompress(unzip.unconsumed_tail, 8 * n)
    if not values:
        sizes = mtimes = b""
    if not names:
        return n, sizes, mtimes, b""
    body = unzip.decompress(unzip.unconsumed_tail) + unzip.flush()
    return n, sizes, mtimes, body


class Column:
    """A column of values (sizes or mtimes) as stored: deltas as int64, their bytes transposed
    into 8 planes. Values are read from it by summing plane bytes at C speed, in order of index,
    without decoding the column (which would take 36 bytes a file as Python ints)."""

    def __init__(self, data: bytes, n: int) -> None:
        self.planes = [data[k * n : (k + 1) * n] for k in range(8)]  # bytes sum faster
        self.n = n
        self.sums = [0] * 8
        self.at = 0  # sums hold the planes' bytes before this index

    def delta(self, i: int) -> int:
        return signed(sum(plane[i] << (8 * k) for k, plane in enumerate(self.planes)))

    def before(self, i: int) -> int:
        """The value at index i - 1 (0 for i = 0); i never goes back."""
        for k, plane in enumerate(self.planes):
            self.sums[k] += sum(plane[self.at : i])
        self.at = i
        return signed(sum(total << (8 * k) for k, total in enumerate(self.sums)))

    def value(self, i: int) -> int:
        return self.before(i) + self.delta(i)

    def merged(self, at: list[tuple[int, bool, int | None]]) -> tuple[bytes, int]:
        """The column with values inserted before, or put in place of, the old values at the
        given indexes (in order; None: the old value is taken out); and the sum of the new
        values less that of those replaced or taken out."""
        pieces: list[int | tuple[int, int]] = []  # a new delta, or a run of old ones
        i, last, added = 0, 0, 0  # the next old index to copy; the last value written
        for index, replaces, new in at:
            if index > i:
                pieces.append(self.value(i) - last)
                if index > i + 1:
                    pieces.append((i + 1, index))
                last, i = self.before(index), index
            if new is not None:
                pieces.append(new - last)
                last, added = new, added + new
            if replaces:
                added -= self.value(i)
                i += 1
        if i < self.n:
            pieces.append(self.value(i) - last)
            if self.n > i + 1:
                pieces.append((i + 1, self.n))
        planes = [
            b"".join(
                plane[p[0] : p[1]] if isinstance(p, tuple) else bytes(((p >> (8 * k)) & 255,))
                for p in pieces
            )
            for k, plane in enumerate(self.planes)
        ]
        return b"".join(planes), added


def signed(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value

"""The compact form of a directory's confirmed listing: a few bytes per file.

Names are sorted and front-coded (the length of the prefix shared with the previous name, then
the rest), joined with NUL; sizes and mtimes become deltas between neighbours (sequential
detector files differ little), stored as int64 with their bytes transposed so that the mostly-zero
high bytes line up, and the whole is zlib-compressed. Encoding and decoding run at C speed.

A directory of a million files must not become a million Python objects (about 150 bytes each):
``known`` reads only the names, a chunk at a time, into a table of their hashes (16 bytes a
name); ``lookup`` and ``find`` find names, and ``merge`` adds, replaces or drops a few files,
each decoding only the names near them. For that, about one name in ``RESTART`` (chosen by its
CRC, so that an insertion moves no other) is stored whole: such a piece follows a NUL with the
byte 1 (shared prefix 0), so the restart points are found at C speed, and the names between two
of them are all that is decoded. (A listing written before restart points still decodes, and is
searched from the nearest name stored whole by chance; every merge leaves more of them.)
"""

from __future__ import annotations

import re
import struct
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterator
from itertools import accumulate

_MAGIC = 1  # format version of the blob, first byte
_HEADER = struct.Struct("<BI")


_CHUNK = 1 << 18  # bytes of front-coded names split at once
RESTART = 64  # one name in about this many is stored whole (a restart point)


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
    if zlib.crc32(name) % RESTART == 0:
        return b"\x01" + name  # a restart point
    # the shared prefix's length, from the highest differing byte of the two as integers
    n = min(len(prev), len(name))
    diff = int.from_bytes(prev[:n], "big") ^ int.from_bytes(name[:n], "big")
    shared = min(n - (diff.bit_length() + 7) // 8, 254)
    return b"%c%b" % (shared + 1, name[shared:])


def _front_code(names: list[bytes], prev: bytes = b"") -> bytes:
    """The names front-coded, the first after ``prev`` (the name before them, if any)."""
    out: list[bytes] = []
    for name in names:
        out.append(_piece(prev, name))
        prev = name
    return b"\0".join(out)


def _names(body: bytes) -> Iterator[bytes]:
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


def _restarts(body: bytes) -> tuple[list[int], list[bytes]]:
    """The offsets of the names stored whole, and those names (in order)."""
    if not body:
        return [], []
    end = body.find(b"\0")
    starts, heads = [0], [body[1:] if end < 0 else body[1:end]]
    for m in _WHOLE.finditer(body):
        starts.append(m.start() + 1)
        heads.append(m.group(1))
    return starts, heads


def _block(body: bytes, begin: int, stop: int) -> list[bytes]:
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


def _open(blob: bytes, values: bool = True, names: bool = True) -> tuple[int, bytes, bytes, bytes]:
    """(files, sizes, mtimes, names): the three parts of a listing, each decompressed on its own
    (no copy of the whole); the parts not asked for are b""."""
    magic, n = _HEADER.unpack_from(blob)
    if magic != _MAGIC:
        raise ValueError(f"unknown listing format {magic}")
    unzip = zlib.decompressobj()
    sizes = unzip.decompress(blob[_HEADER.size :], 8 * n)
    mtimes = unzip.decompress(unzip.unconsumed_tail, 8 * n)
    if not values:
        sizes = mtimes = b""
    if not names:
        return n, sizes, mtimes, b""
    body = unzip.decompress(unzip.unconsumed_tail) + unzip.flush()
    return n, sizes, mtimes, body


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
    _, _, _, body = _open(blob, values=False)
    t, at, mask = names.table, names.at, names.mask
    ascii = body.isascii()
    for position, name in enumerate(_names(body)):
        h = (hash(name) if ascii else hash(name.decode("utf-8"))) or 1
        i = h & mask
        while t[i]:
            i = (i + 1) & mask
        t[i] = h
        at[i] = position
    names.size = n
    del body
    _, size_data, mtime_data, _ = _open(blob, names=False)
    sizes = array("q", accumulate(_deltas(size_data, n)))
    del size_data
    deltas = _deltas(mtime_data, n)
    del mtime_data
    return names, sizes, array("q", accumulate(deltas))


def known(blob: bytes | None) -> NameSet:
    """The names of a confirmed listing, as a NameSet (read a chunk at a time)."""
    names = NameSet(count(blob))
    if not blob:
        return names
    n, _, _, body = _open(blob, values=False)
    # the table filled here, inline: a method call a name costs 15 %
    t, mask = names.table, names.mask
    ascii = body.isascii()  # an ASCII name hashes as its str does; others are decoded
    for name in _names(body):
        h = (hash(name) if ascii else hash(name.decode("utf-8"))) or 1
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


def present(blob: bytes | None, wanted: Collection[str]) -> set[str]:
    """The names of ``wanted`` that a confirmed listing holds (``lookup`` without the values)."""
    return find(blob, (), wanted)[1]


def find(
    blob: bytes | None, values_of: Collection[str], names_of: Collection[str] = ()
) -> tuple[dict[str, tuple[int, int]], set[str]]:
    """``lookup`` of ``values_of`` and ``present`` of ``names_of``, reading the listing once."""
    if not blob or not (values_of or names_of):
        return {}, set()
    n, _, _, body = _open(blob, values=False)
    valued = {w.encode("utf-8", "surrogateescape") for w in values_of}
    want = sorted(valued.union(w.encode("utf-8", "surrogateescape") for w in names_of))
    if len(want) > 4 * n // RESTART:  # about every block holds some: read them all, once
        wanted_set = set(want)
        found = [(i, name) for i, name in enumerate(_names(body)) if name in wanted_set]
    else:
        found = _in_blocks(body, want)
    del body
    names = {name.decode("utf-8", "surrogateescape") for _, name in found}
    found = [(i, name) for i, name in found if name in valued]
    if not found:
        return {}, names
    _, size_data, mtime_data, _ = _open(blob)
    sizes, mtimes = _Column(size_data, n), _Column(mtime_data, n)
    values = {
        name.decode("utf-8", "surrogateescape"): (sizes.value(i), mtimes.value(i))
        for i, name in found
    }
    return values, names


def _in_blocks(body: bytes, want: list[bytes]) -> list[tuple[int, bytes]]:
    """[(position, name)] of the names of ``want`` (sorted) found, each block between two names
    stored whole decoded only as far as the last name wanted in it."""
    starts, heads = _restarts(body)
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


def merge(
    blob: bytes | None, files: dict[str, tuple[int, int]], drop: Collection[str] = ()
) -> tuple[bytes, int, int]:
    """A confirmed listing with ``files`` added or replaced and the names of ``drop`` taken
    out: (blob, files, bytes added: the sizes of ``files`` less those they replace and those
    dropped), without decoding the files it keeps (the same bytes as ``encode`` of the merged
    listing). A name is not both in ``files`` and in ``drop``."""
    if not blob or not count(blob):
        merged = encode(files)
        return merged, len(files), sum(size for size, _ in files.values())
    n, size_data, mtime_data, body = _open(blob)
    starts, heads = _restarts(body)
    # (name, stats); stats None: the name is dropped
    updates: list[tuple[bytes, tuple[int, int] | None]] = sorted(
        [(name.encode("utf-8"), stats) for name, stats in files.items()]
        + [(name.encode("utf-8", "surrogateescape"), None) for name in drop],
        key=lambda u: u[0],
    )
    # the blocks (from a restart point to the next) that change; -1: before the first name
    groups: dict[int, list[tuple[bytes, tuple[int, int] | None]]] = {}
    for name, stats in updates:
        groups.setdefault(bisect_right(heads, name) - 1, []).append((name, stats))
    chunks: list[bytes] = []  # the new body, in order
    at: list[tuple[int, bool, tuple[int, int] | None]] = []  # (old index, replaces it, stats)
    copied = 0  # the body before this offset is in chunks
    counted, before = 0, 0  # names before offset `counted` of the body
    order = sorted(groups)
    k = 0
    while k < len(order):  # a run of consecutive blocks that change is decoded and coded anew
        first = last = order[k]
        while k + 1 < len(order) and order[k + 1] == last + 1:
            k, last = k + 1, order[k + 1]
        k += 1
        changes = [u for j in range(first, last + 1) for u in groups.get(j, [])]
        begin = starts[first] if first >= 0 else 0
        stop = starts[last + 1] - 1 if last + 1 < len(starts) else len(body)
        old = _block(body, begin, stop) if last >= 0 else []
        names, ops = _changed(old, changes)
        before += body.count(b"\0", counted, begin)
        counted = begin
        at.extend((before + i, replaces, stats) for i, replaces, stats in ops)
        chunks.append(body[copied:begin])  # ends with the NUL before this run, if any
        # the run's first name stored whole was dropped: the names now follow the last one of
        # the block before (decoded only then)
        prev = b""
        if begin and (not names or names[0] != old[0]):
            prev = _block(body, starts[first - 1], begin - 1)[-1]
        if names:
            chunks.append(_front_code(names, prev))
            sep, prev = b"\0", names[-1]
        else:  # every name of the run dropped
            sep = b""
        copied = stop
        if last + 1 < len(starts):  # the next name stored whole may now share a prefix
            head_end = body.find(b"\0", starts[last + 1])
            head_end = head_end if head_end >= 0 else len(body)
            chunks.append(sep + _piece(prev, heads[last + 1]))
            copied = head_end
        elif not names and begin:
            chunks[-1] = chunks[-1][:-1]  # the listing now ends before this run: no NUL
    chunks.append(body[copied:])
    del body
    total = n + sum(s is not None for _, r, s in at if not r) - sum(s is None for _, _, s in at)
    packer = zlib.compressobj(9)
    parts = [_HEADER.pack(_MAGIC, total)]
    added = 0
    for column, data in enumerate((size_data, mtime_data)):  # one column at a time
        column_at = [(i, r, None if s is None else s[column]) for i, r, s in at]
        merged, more = _Column(data, n).merged(column_at)
        added = added if column else more
        parts.append(packer.compress(merged))
        del merged
    del data, size_data, mtime_data
    for chunk in chunks:
        parts.append(packer.compress(chunk))
    parts.append(packer.flush())
    return b"".join(parts), total, added


def _changed(
    old: list[bytes], changes: list[tuple[bytes, tuple[int, int] | None]]
) -> tuple[list[bytes], list[tuple[int, bool, tuple[int, int] | None]]]:
    """A block's names with the changes (sorted; stats None: drop the name) applied, and the
    changes as (index in the block, replaces the old name there, stats)."""
    names: list[bytes] = []
    ops: list[tuple[int, bool, tuple[int, int] | None]] = []
    i = 0
    for name, stats in changes:
        while i < len(old) and old[i] < name:
            names.append(old[i])
            i += 1
        replaces = i < len(old) and old[i] == name
        if stats is None:
            if replaces:  # a name not in the listing is not dropped
                ops.append((i, True, None))
                i += 1
            continue
        ops.append((i, replaces, stats))
        names.append(name)
        i += replaces
    names.extend(old[i:])
    return names, ops


class _Column:
    """A column of values (sizes or mtimes) as stored: deltas as int64, their bytes transposed
    into 8 planes. Values are read from it by summing plane bytes at C speed, in order of index,
    without decoding the column (which would take 36 bytes a file as Python ints)."""

    def __init__(self, data: bytes, n: int) -> None:
        self.planes = [data[k * n : (k + 1) * n] for k in range(8)]  # bytes sum faster
        self.n = n
        self.sums = [0] * 8
        self.at = 0  # sums hold the planes' bytes before this index

    def delta(self, i: int) -> int:
        return _signed(sum(plane[i] << (8 * k) for k, plane in enumerate(self.planes)))

    def before(self, i: int) -> int:
        """The value at index i - 1 (0 for i = 0); i never goes back."""
        for k, plane in enumerate(self.planes):
            self.sums[k] += sum(plane[self.at : i])
        self.at = i
        return _signed(sum(total << (8 * k) for k, total in enumerate(self.sums)))

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


def _signed(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value

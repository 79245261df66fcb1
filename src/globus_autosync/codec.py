"""The compact form of a directory's confirmed listing: a few bytes per file.

Names are sorted and front-coded (the length of the prefix shared with the previous name, then
the rest), joined with NUL; sizes and mtimes become deltas between neighbours (sequential
detector files differ little), stored as int64 with their bytes transposed so that the mostly-zero
high bytes line up, and the whole is zlib-compressed. Encoding and decoding run at C speed.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from itertools import accumulate

_MAGIC = 1  # format version of the blob, first byte
_HEADER = struct.Struct("<BI")


def _shuffle(values: list[int]) -> bytes:
    deltas = [b - a for a, b in zip([0, *values], values, strict=False)]
    raw = array("q", deltas).tobytes()
    return b"".join(raw[i::8] for i in range(8))


def _unshuffle(data: bytes, count: int) -> list[int]:
    raw = bytearray(8 * count)
    for i in range(8):
        raw[i::8] = data[i * count : (i + 1) * count]
    deltas = array("q")
    deltas.frombytes(bytes(raw))
    return list(accumulate(deltas))


def _front_code(names: list[bytes]) -> bytes:
    out: list[bytes] = []
    prev = b""
    for name in names:
        # the shared prefix's length, from the highest differing byte of the two as integers
        n = min(len(prev), len(name))
        diff = int.from_bytes(prev[:n], "big") ^ int.from_bytes(name[:n], "big")
        shared = min(n - (diff.bit_length() + 7) // 8, 254)
        out.append(b"%c%b" % (shared + 1, name[shared:]))  # never a NUL
        prev = name
    return b"\0".join(out)


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

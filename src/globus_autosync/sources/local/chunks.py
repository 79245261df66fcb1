"""A large directory's listing cut into chunks of names, each known by a digest (a few bytes each).

Relisting a directory of a million files must not look up a million names. The kernel lists a
directory in an order of its own (a hash of the names on ext4 and XFS, creation order on btrfs
and tmpfs) that does not change while no name is added or removed, so the listing is cut into
chunks, content-defined as in rsync or borg: a chunk ends after each name whose CRC-32 is 0 modulo
``NAMES_PER_CHUNK``, so a new name changes its own chunk and no other. After a relist, the digest
of each chunk
whose names are all in the confirmed listing (or excluded by a pattern) is stored with the
directory (``dirs.chunks``). The next relist digests each chunk again and looks up only the names
of chunks it does not find there: one new file costs the lookup of about ``NAMES_PER_CHUNK`` names,
not of a million, and an unchanged listing costs no lookup at all.

A stored digest vouches that its names are all confirmed. Names leave the confirmed listing
only when cleanup deletes files, which therefore forgets the directory's digests. The digests
are stored with a fingerprint of the job's ``exclude`` patterns, and ignored when the patterns
changed (a name excluded then may not be now).
"""

from __future__ import annotations

import hashlib

NAMES_PER_CHUNK = 32  # on average (a power of two)
MASK = NAMES_PER_CHUNK - 1
SIZE = 8  # bytes of a chunk's digest


def digest(names: list[str]) -> bytes:
    """A chunk's digest: its names, in the directory's order (a NUL never occurs in a name)."""
    joined = "\0".join(names).encode("utf-8", "surrogateescape")
    return hashlib.blake2b(joined, digest_size=SIZE).digest()


def fingerprint(patterns: tuple[str, ...]) -> bytes:
    """The ``exclude`` patterns the digests were made under."""
    return hashlib.blake2b("\0".join(patterns).encode("utf-8"), digest_size=SIZE).digest()


def pack(patterns: tuple[str, ...], digests: set[bytes]) -> bytes:
    """The stored form: the patterns' fingerprint, then the digests, sorted."""
    return fingerprint(patterns) + b"".join(sorted(digests))


def unpack(blob: bytes | None, patterns: tuple[str, ...]) -> set[bytes]:
    """The digests stored for a directory, or none if they were made under other patterns."""
    if not blob or len(blob) % SIZE or blob[:SIZE] != fingerprint(patterns):
        return set()
    return {blob[i : i + SIZE] for i in range(SIZE, len(blob), SIZE)}

"""Adding, replacing or dropping a few files of a confirmed listing without decoding the files
it keeps: only the blocks (between two names stored whole) that change are decoded and coded
again.
"""

from __future__ import annotations

import zlib
from bisect import bisect_right
from collections.abc import Collection

from globus_autosync.store.codec.format import (
    HEADER,
    MAGIC,
    Column,
    block,
    count,
    encode,
    front_code,
    open_parts,
    piece,
    restarts,
)


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
    n, size_data, mtime_data, body = open_parts(blob)
    starts, heads = restarts(body)
    # (name, stats); stats None: the name is dropped
    updates: list[tuple[bytes, tuple[int, int] | None]] = sorted(
        [(name.encode("utf-8", "surrogateescape"), stats) for name, stats in files.items()]
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
        old = block(body, begin, stop) if last >= 0 else []
        names, ops = _changed(old, changes)
        before += body.count(b"\0", counted, begin)
        counted = begin
        at.extend((before + i, replaces, stats) for i, replaces, stats in ops)
        chunks.append(body[copied:begin])  # ends with the NUL before this run, if any
        # the run's first name stored whole was dropped: the names now follow the last one of
        # the block before (decoded only then)
        prev = b""
        if begin and (not names or names[0] != old[0]):
            prev = block(body, starts[first - 1], begin - 1)[-1]
        if names:
            chunks.append(front_code(names, prev))
            sep, prev = b"\0", names[-1]
        else:  # every name of the run dropped
            sep = b""
        copied = stop
        if last + 1 < len(starts):  # the next name stored whole may now share a prefix
            head_end = body.find(b"\0", starts[last + 1])
            head_end = head_end if head_end >= 0 else len(body)
            chunks.append(sep + piece(prev, heads[last + 1]))
            copied = head_end
        elif not names and begin:
            chunks[-1] = chunks[-1][:-1]  # the listing now ends before this run: no NUL
    chunks.append(body[copied:])
    del body
    total = n + sum(s is not None for _, r, s in at if not r) - sum(s is None for _, _, s in at)
    packer = zlib.compressobj(9)
    parts = [HEADER.pack(MAGIC, total)]
    added = 0
    for column, data in enumerate((size_data, mtime_data)):  # one column at a time
        column_at = [(i, r, None if s is None else s[column]) for i, r, s in at]
        merged, more = Column(data, n).merged(column_at)
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

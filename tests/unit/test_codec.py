"""The compact listing of a directory's confirmed files: exact round trips, a few bytes a file."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from globus_autosync.store import codec
from globus_autosync.store.codec import format as codec_format
from globus_autosync.store.codec.format import open_parts, restarts

NAMES = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\0/"), min_size=1, max_size=40
)
LISTINGS = st.dictionaries(
    NAMES,
    st.tuples(st.integers(0, 2**62), st.integers(-(2**61), 2**61)),
    max_size=60,
)


def test_empty() -> None:
    assert codec.decode(codec.encode({})) == {}
    assert codec.decode(None) == {}
    assert codec.decode(b"") == {}


def test_detector_like_listing_round_trips_in_a_few_bytes_per_file() -> None:
    base = 1_537_950_000_000_000_000
    listing = {
        f"YAGline9test_{i:05}.tif": (4_194_432 + (i % 3), base + i * 97_000_123)
        for i in range(10_000)
    }
    blob = codec.encode(listing)
    assert codec.decode(blob) == listing
    assert len(blob) < 8 * len(listing), len(blob)


@pytest.mark.parametrize(
    "listing",
    [
        {"a": (0, 0)},
        {"x" * 300 + "1": (1, 2), "x" * 300 + "2": (3, 4)},  # shared prefixes past 254 bytes
        {"é.dat": (5, -1), "ée.dat": (6, -2_000_000_000)},  # non-ASCII, mtimes before 1970
        {"b": (2**62, 1), "a": (0, 2**61)},  # large and decreasing values
        {"日本語": (1, 1), "日本": (2, 2), "日": (3, 3)},  # prefixes that end inside a character
        {"emoji-😀": (7, 7), "line\nbreak": (8, 8), " ": (9, 9)},
    ],
)
def test_round_trip_edge_cases(listing: dict[str, tuple[int, int]]) -> None:
    assert codec.decode(codec.encode(listing)) == listing


@settings(max_examples=200, deadline=None)
@given(LISTINGS)
def test_round_trip_any_listing(listing: dict[str, tuple[int, int]]) -> None:
    assert codec.decode(codec.encode(listing)) == listing


def test_encoding_does_not_depend_on_insertion_order() -> None:
    a = {"b": (1, 2), "a": (3, 4), "c": (5, 6)}
    b = dict(reversed(list(a.items())))
    assert codec.encode(a) == codec.encode(b)


def test_unknown_format_is_refused() -> None:
    blob = struct.pack("<BI", 99, 1) + zlib.compress(b"\0" * 16 + b"\x01a")
    with pytest.raises(ValueError, match="unknown listing format"):
        codec.decode(blob)


@settings(max_examples=300, deadline=None)
@given(old=LISTINGS, new=LISTINGS)
def test_merge_gives_the_bytes_of_the_merged_listing(
    old: dict[str, tuple[int, int]], new: dict[str, tuple[int, int]]
) -> None:
    merged = {**old, **new}
    blob, files, added = codec.merge(codec.encode(old) if old else None, new)
    assert codec.decode(blob) == merged
    assert blob == codec.encode(merged)
    total = sum(s for s, _ in merged.values())
    assert (files, added) == (len(merged), total - sum(s for s, _ in old.values()))


@settings(max_examples=200, deadline=None)
@given(listing=LISTINGS, others=st.lists(NAMES, max_size=10))
def test_the_name_set_and_lookup_answer_as_the_decoded_listing(
    listing: dict[str, tuple[int, int]], others: list[str]
) -> None:
    blob = codec.encode(listing)
    wanted = [*list(listing)[::3], *others]
    names, found = codec.name_set(blob), codec.lookup(blob, wanted)
    assert found == {w: listing[w] for w in wanted if w in listing}
    assert len(names) == len(listing) == codec.count(blob)
    assert all(name in names for name in listing)
    assert [o for o in others if o in names] == [o for o in others if o in listing]


def test_names_of_a_long_listing_cross_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec_format, "_CHUNK", 64)
    listing = {f"frame_{i:07d}.tif": (i % 7, 10**18 + i) for i in range(3000)}
    blob = codec.encode(listing)
    names = codec.name_set(blob)
    found = codec.lookup(blob, ["frame_0002999.tif", "frame_0000000.tif", "nope"])
    assert found == {
        "frame_0002999.tif": (2999 % 7, 10**18 + 2999),
        "frame_0000000.tif": (0, 10**18),
    }
    assert all(f"frame_{i:07d}.tif" in names for i in range(3000))
    assert "frame_0003000.tif" not in names
    add = {"frame_0001500x.tif": (1, 2), "frame_0000001.tif": (5, 6), "zzz": (0, 0)}
    assert codec.merge(blob, add)[0] == codec.encode({**listing, **add})


def test_a_listing_written_before_restart_points_is_searched_and_merged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listing = {f"YAG_{i:05d}.tif": (i, 10**18 + 7 * i) for i in range(2000)}
    with monkeypatch.context() as m:
        m.setattr(codec_format, "RESTART", 1 << 40)  # no name stored whole but the first
        old = codec.encode(listing)
    assert codec.decode(old) == listing
    assert codec.lookup(old, ["YAG_01999.tif", "YAG_00000.tif", "YAG_2.tif"]) == {
        "YAG_01999.tif": listing["YAG_01999.tif"],
        "YAG_00000.tif": listing["YAG_00000.tif"],
    }
    add = {"YAG_01000.tif": (5, 5), "YAG_00999x.tif": (1, 1), "A.tif": (2, 2), "Z.tif": (3, 3)}
    blob, files, added = codec.merge(old, add)
    merged = {**listing, **add}
    assert codec.decode(blob) == merged
    assert (files, added) == (len(merged), 5 + 1 + 2 + 3 - 1000)
    assert codec.merge(blob, {"B.tif": (0, 0)})[0] == codec.encode({**merged, "B.tif": (0, 0)})


@settings(max_examples=100, deadline=None)
@given(listing=LISTINGS, others=st.lists(NAMES, max_size=5))
def test_index_gives_each_name_its_position_and_values(
    listing: dict[str, tuple[int, int]], others: list[str]
) -> None:
    names, sizes, mtimes = codec.index(codec.encode(listing) if listing else None)
    for name, stats in listing.items():
        i = names.find(name)
        assert (sizes[i], mtimes[i]) == stats
    assert sorted(names.find(n) for n in listing) == list(range(len(listing)))
    assert all(names.find(o) == -1 for o in others if o not in listing)


BIG = {f"scan_{i * 7 % 5003:05d}_{'ab'[i % 2]}.h5": (i % 11, 10**18 + 13 * i) for i in range(5000)}
BIG_BLOB = codec.encode(BIG)


@settings(max_examples=100, deadline=None)
@given(
    picks=st.lists(st.sampled_from(sorted(BIG)), max_size=300),
    others=st.lists(st.sampled_from(sorted(BIG)), max_size=300),
    strangers=st.lists(NAMES, max_size=20),
)
def test_find_answers_as_the_decoded_listing_for_few_names_and_many(
    picks: list[str], others: list[str], strangers: list[str]
) -> None:
    """``find`` reads the listing once, block by block for a few names (up to a few per block)
    and whole for more: either way it answers as the decoded listing does."""
    values_of = [*picks, *strangers[::2]]
    names_of = [*others, *strangers[1::2]]
    values, names = codec.find(BIG_BLOB, values_of, names_of)
    assert values == {n: BIG[n] for n in values_of if n in BIG}
    assert names == {n for n in (*values_of, *names_of) if n in BIG}
    assert codec.find(BIG_BLOB, (), names_of) == ({}, {n for n in names_of if n in BIG})


@settings(max_examples=300, deadline=None)
@given(
    old=LISTINGS,
    new=st.dictionaries(NAMES, st.tuples(st.integers(0, 2**40), st.integers(0, 2**61)), max_size=8),
    drop_every=st.integers(1, 4),
    strangers=st.lists(NAMES, max_size=3),
)
def test_merge_with_names_dropped_gives_the_bytes_of_the_listing_left(
    old: dict[str, tuple[int, int]],
    new: dict[str, tuple[int, int]],
    drop_every: int,
    strangers: list[str],
) -> None:
    drop = {n for n in list(old)[::drop_every] if n not in new} | {
        s for s in strangers if s not in new
    }
    left = {n: v for n, v in {**old, **new}.items() if n not in drop}
    blob, files, added = codec.merge(codec.encode(old) if old else None, new, drop)
    assert codec.decode(blob) == left
    assert blob == codec.encode(left)
    before = sum(s for s, _ in old.values())
    assert (files, added) == (len(left), sum(s for s, _ in left.values()) - before)


@settings(max_examples=100, deadline=None)
@given(
    spans=st.lists(st.tuples(st.integers(0, 4999), st.integers(1, 400)), max_size=4),
    picks=st.lists(st.sampled_from(sorted(BIG)), max_size=30),
    new=st.dictionaries(
        st.sampled_from([f"scan_{i:05d}_c.h5" for i in range(0, 5000, 37)]),
        st.tuples(st.integers(0, 99), st.integers(0, 2**61)),
        max_size=5,
    ),
)
def test_merge_drops_whole_blocks_of_a_long_listing(
    spans: list[tuple[int, int]], picks: list[str], new: dict[str, tuple[int, int]]
) -> None:
    """Runs of names (whole blocks between names stored whole, the first and the last among
    them) dropped from a listing of 5,000: the bytes of the listing left, as ``encode`` makes."""
    names = sorted(BIG)
    drop = set(picks)
    for start, length in spans:
        drop.update(names[start : start + length])
    left = {n: v for n, v in {**BIG, **new}.items() if n not in drop}
    blob, files, added = codec.merge(BIG_BLOB, new, drop)
    assert blob == codec.encode(left)
    assert files == len(left) and codec.count(blob) == len(left)
    assert added == sum(s for s, _ in left.values()) - sum(s for s, _ in BIG.values())


def test_merge_drops_runs_of_whole_blocks_exactly() -> None:
    """Every name of one block or of several in a row (the first, one in the middle, the last,
    all of them), with or without a file added elsewhere."""
    names = sorted(BIG)
    _, _, _, body = open_parts(BIG_BLOB, values=False)
    heads = [h.decode() for h in restarts(body)[1]]
    at = [names.index(h) for h in heads] + [len(names)]
    blocks = len(heads)
    assert blocks > 20
    for first, last in ((0, 0), (0, 2), (5, 5), (7, 9), (blocks - 1, blocks - 1),
                        (blocks - 3, blocks - 1), (0, blocks - 1)):  # fmt: skip
        drop = set(names[at[first] : at[last + 1]])
        for new in ({}, {"scan_02500_z.h5": (1, 2)}, {"a_first.h5": (3, 4)}):
            left = {n: v for n, v in {**BIG, **new}.items() if n not in drop}
            blob, files, _ = codec.merge(BIG_BLOB, new, drop)
            assert blob == codec.encode(left), (first, last, new)
            assert codec.decode(blob) == left and files == len(left)

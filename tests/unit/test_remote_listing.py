"""The remote source's pieces: the pace, the reading of one listing, paging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from globus_autosync.config import Job, JobGlobus
from globus_autosync.globus.client import Pace
from globus_autosync.sources.base import SKIPPED_SPECIAL, SKIPPED_SYMLINK, Excluder
from globus_autosync.sources.globus import INVALID_LINK, GlobusSource, classify, mtime_ns

UUID_A = "ddb59aef-6d04-11e5-ba46-22000b92c6ec"
UUID_B = "ddb59af0-6d04-11e5-ba46-22000b92c6ec"


def entry(
    name: str,
    kind: str = "file",
    size: int = 1,
    link: str | None = None,
    when: str = "2023-12-18 16:52:50+00:00",
) -> dict[str, Any]:
    return {"name": name, "type": kind, "size": size, "last_modified": when, "link_target": link}


def test_the_pace_spaces_requests() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pace = Pace(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pace.wait()
    assert slept == [0.25] * 4  # the first at once, then one every quarter second
    now[0] += 10  # after a pause, no catching up in a burst
    pace.wait()
    pace.wait()
    assert slept[-1] == 0.25 and len(slept) == 5


def test_last_modified_is_whole_seconds_utc() -> None:
    assert mtime_ns(entry("a")) == 1702918370 * 10**9
    assert mtime_ns({"name": "a"}) == 0


def test_classify_one_listing() -> None:
    entries = [
        entry("a.tif", size=7),
        entry("dup"),
        entry("dup", size=2),
        entry("sub", "dir"),
        entry("gone", "invalid_symlink", link="nowhere"),
        entry("link.tif", link="/x/a.tif"),
        entry("scratch.tmp"),
        entry("odd", "device"),
        entry("two\nlines"),
    ]
    listing, targets = classify(entries, "/src", "", Excluder(("*.tmp",)), follow=False)
    assert listing.files == {"a.tif": (7, 1702918370 * 10**9)}
    assert [s.name for s in listing.subdirs] == ["sub"] and listing.subdirs[0].path == "/src/sub"
    assert listing.skipped["dup"].startswith("AMBIGUOUS_PATH: 2 entries")
    assert listing.skipped["gone"] == INVALID_LINK
    assert listing.skipped["link.tif"] == SKIPPED_SYMLINK
    assert listing.skipped["odd"] == SKIPPED_SPECIAL
    assert "two\nlines" in listing.skipped  # the name itself (the store keeps it printable)
    assert "scratch.tmp" not in listing.skipped and targets == {}
    followed, targets = classify(
        [entry("l", "dir", link="../up")], "/src/a", "a", Excluder(()), follow=True
    )
    assert [s.name for s in followed.subdirs] == ["l"] and targets == {"l": "/src/up"}


class _Client:
    """operation_ls over a folder that gains an entry between two pages."""

    def __init__(self, names: list[str], limit: int) -> None:
        self.names, self.limit, self.calls = names, limit, 0

    def operation_ls(self, cid: str, path: str, limit: int, offset: int) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 2:
            self.names.insert(0, "0-new")  # shifts every later entry one place
        page = self.names[offset : offset + self.limit]
        return {"DATA": [entry(n) for n in page], "limit": self.limit}


class _Session:
    def __init__(self, client: _Client) -> None:
        self.tc = client

    def call(self, what: str, fn: Any, hook: Any = None, side: str = "") -> Any:
        return fn()


def test_paging_ends_at_a_short_page_and_an_entry_shifted_across_pages_is_not_a_duplicate() -> None:
    job = Job(
        name="r",
        source=Path("/src"),
        destination="/d",
        transport="globus",
        scan="globus",
        globus=JobGlobus(source_collection=UUID_A, destination_collection=UUID_B),
        requests_per_second=20,
    )
    client = _Client([f"f{i}" for i in range(5)], limit=2)
    source = GlobusSource(job, _Session(client))  # type: ignore[arg-type]
    got = [e["name"] for e in source.entries("/src")]
    # pages: f0 f1 | (0-new inserted) f1 f2 | f3 f4 | (empty, shorter than the limit)
    assert got == ["f0", "f1", "f2", "f3", "f4"]
    assert client.calls == source.requests == 4

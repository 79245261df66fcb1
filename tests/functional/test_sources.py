"""The source seam's conformance: the local filesystem and a Globus collection (the emulated
Transfer service over the same directory) list one tree alike, one directory at a time and
walked whole against a store."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from globus_autosync import config
from globus_autosync.model.plan import DirPlan
from globus_autosync.sources import Source, make_source
from globus_autosync.sources.base import DirTree, Listing, join
from globus_autosync.store import Store
from globus_autosync.transports.globus import GlobusTransport

from .globus_env import Globus, populate, remote
from .helpers import LONG_AGO

Seen = dict[str, tuple[int, int]]


def walk(source: Source, state: Path) -> tuple[Seen, set[str], set[str]]:
    """Every file (path -> size, whole-second mtime), directory and passed-over entry."""
    store = Store.open(state)
    files: Seen = {}
    skipped: set[str] = set()
    try:
        tree = DirTree(store, store.jobs.ensure("conformance"))

        def apply(dir_id: int, plan: DirPlan, listing: Listing, mtime: int, ino: int) -> None:
            rel = tree.rel[dir_id]
            for name, (size, mtime_ns) in listing.files.items():
                files[join(rel, name)] = (size, mtime_ns // 10**9)
            skipped.update(join(rel, name) for name in listing.skipped)

        walked = source.walk(tree, apply, True, 0.0, plan=False)
        assert not walked.stopped and walked.problem is None
        dirs = {rel for rel in tree.rel.values()}
    finally:
        store.close()
    return files, dirs, skipped


@pytest.mark.parametrize("symlinks", ["skip", "follow"])
def test_both_sources_list_one_tree_alike(
    gx: Globus, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, symlinks: str
) -> None:
    files = populate(gx)
    gx.env.write("run_Sep2018/scratch.tmp", b"excluded", mtime=LONG_AGO)
    gx.env.write("run_Sep2018/line\nbreak.dat", b"unsendable", mtime=LONG_AGO)
    os.symlink("notes.txt", gx.src / "run_Sep2018" / "link.txt")
    os.symlink("nowhere", gx.src / "run_Sep2018" / "dangling")
    os.symlink("../run_Sep2018", gx.src / "run_Oct2018" / "sep")  # a directory link
    remote(gx, exclude=["*.tmp"], symlinks=symlinks)
    for key, value in gx.environ().items():
        monkeypatch.setenv(key, value)
    cfg = config.load(gx.env.config)
    [job] = cfg.jobs
    transport = GlobusTransport(job, cfg, gx.env.state)
    try:
        remote_source = make_source(job, transport)
        got = walk(remote_source, tmp_path / "remote")
        local_job = replace(job, scan="local", source=gx.src)
        want = walk(make_source(local_job, None), tmp_path / "local")
        assert got == want
        assert set(files) <= set(got[0]) and "run_Sep2018/scratch.tmp" not in got[0]
        if symlinks == "follow":
            assert "run_Sep2018/link.txt" in got[0]
            assert "run_Oct2018/sep/notes.txt" in got[0]
        else:
            assert {"run_Sep2018/link.txt", "run_Oct2018/sep"} <= got[2]
        assert "run_Sep2018/dangling" in got[2]
        # one directory, alike
        one_remote = remote_source.list_dir("run_Sep2018")
        one_local = make_source(local_job, None).list_dir("run_Sep2018")
        assert set(one_remote.skipped) == set(one_local.skipped)
        assert {n: (s, m // 10**9) for n, (s, m) in one_remote.files.items()} == {
            n: (s, m // 10**9) for n, (s, m) in one_local.files.items()
        }
    finally:
        transport.close()

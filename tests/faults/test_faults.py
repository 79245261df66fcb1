"""I/O faults anywhere the tool writes (destination, state database, lock, log, metrics file,
source cleanup's deletions and their log):
every faulted run ends with a documented exit code and no traceback; clean runs afterwards
deliver everything, leave nothing stray, and the database is intact.

The default suite runs a short seeded campaign; ``pytest -m faults_long`` a long one
(README, Development)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .harness import (
    Campaign,
    assert_audited,
    assert_holds,
    assert_holds_only,
    assert_nothing_lost,
    assert_store_intact,
    snapshot,
)

SEED = int(os.environ.get("AUTOSYNC_FAULT_SEED", "20261201"))
SHORT = 40  # about 15 s on an idle 2-core machine
LONG = int(os.environ.get("AUTOSYNC_FAULT_RUNS", "400"))  # a few minutes


def campaign(root: Path, runs: int) -> None:
    c = Campaign(root, SEED)
    before = {"detector": snapshot(c.src), "legacy": snapshot(c.legacy_src)}
    c.faulted(runs)
    bad = c.violations()
    assert not bad, f"{len(bad)} of {runs} faulted runs (seed {SEED}):\n" + "\n".join(bad[:8])
    codes = {o.code for o in c.outcomes}
    assert codes & {1, 3}, f"the faults never bit: exit codes {codes}"  # the injector works
    last = c.clean()
    assert last.code == 0, f"clean run: exit {last.code}\n{last.stdout}\n{last.stderr}"
    assert not last.problems(), last.report()
    assert_holds(c.dst, c.delivered(c.src))
    assert_holds(c.legacy_dst, c.delivered(c.legacy_src))
    assert_nothing_lost(before["detector"], c.src, c.dst)
    assert_nothing_lost(before["legacy"], c.legacy_src, c.legacy_dst)
    assert_audited(c.state, c.src, c.delivered(c.src))
    assert_store_intact(c.state / "state.db")
    # the destination audit, once the disk is healthy, finds everything where it was confirmed
    audit = c.cli(None, "verify")
    assert audit.code == 0, f"clean audit: exit {audit.code}\n{audit.stdout}\n{audit.stderr}"
    # and source cleanup, once the disk is healthy, deletes everything delivered, once each
    c.configure(delete_after="0s")
    for _ in range(2):
        last = c.cli(None, "run", "--job", "detector")
        assert last.code == 0, f"clean cleanup run: exit {last.code}\n{last.stderr}"
    assert not [p for p in c.src.rglob("*") if p.is_file()], "files left at the source"
    assert_holds(c.dst, c.delivered(c.src))
    assert_audited(c.state, c.src, c.delivered(c.src))
    assert_holds_only(c.metrics.parent, {c.metrics.name})


@pytest.mark.usefixtures("injector")
def test_a_short_seeded_campaign(tmp_path: Path) -> None:
    campaign(tmp_path, runs=SHORT)


@pytest.mark.faults_long
@pytest.mark.usefixtures("injector")
def test_a_long_seeded_campaign(tmp_path: Path) -> None:
    campaign(tmp_path, runs=LONG)

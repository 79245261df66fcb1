"""A campaign of faulted runs of the real CLI against one set of jobs, then clean runs, and what
must hold after them. Scenarios are small functions in ``SCENARIOS``: one more is a few lines
(``_cleanup`` below, source cleanup, is one).

The final checks allow for source cleanup: a destination must hold every file ever put in its
source (``Campaign.delivered``), a file gone from the source must be at the destination
(``assert_nothing_lost``), and each one has a line in the deletion log (``assert_audited``).

Jobs (local transport, one state directory, one config):
- ``detector``: a tree of five directories, batches of 25; new files arrive between runs.
- ``legacy``: a tree already at its destination (copied with its mtimes), for ``baseline``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from globus_autosync.cli import logs

from .injector import FaultPlan

CHILD = Path(__file__).with_name("child.py")
ALLOWED = frozenset({0, 1, 3, 75})  # README "Exit codes": never 70 (a bug), never 2 here
LONG_AGO = 1_500_000_000
TIMEOUT = 120.0  # a hung child is a failure, not a slow machine
WATCH_CYCLE_WAIT = 20.0  # how long watch may take to log its first cycle

Snapshot = dict[str, tuple[str, int]]  # relpath -> (sha256 of the bytes, mtime_ns)


def snapshot(top: Path) -> Snapshot:
    """Every regular file below ``top`` (hidden ones too: a stray ``.part`` must show)."""
    out: Snapshot = {}
    for dirpath, _, names in os.walk(top):
        for name in names:
            path = Path(dirpath) / name
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[path.relative_to(top).as_posix()] = (digest, st.st_mtime_ns)
    return out


def assert_holds(dst: Path, want: Snapshot) -> None:
    """The destination holds exactly ``want``: same paths, bytes and mtimes, nothing else (no
    ``.part`` file, nothing twice)."""
    got = snapshot(dst)
    missing = sorted(set(want) - set(got))
    stray = sorted(set(got) - set(want))
    differ = sorted(p for p in set(want) & set(got) if want[p] != got[p])
    assert not (missing or stray or differ), (
        f"{dst}: missing {missing[:10]} ({len(missing)}), stray {stray[:10]} ({len(stray)}), "
        f"differing {differ[:10]} ({len(differ)})"
    )


def assert_mirrors(src: Path, dst: Path) -> None:
    """The destination holds exactly the source."""
    assert_holds(dst, snapshot(src))


def assert_nothing_lost(before: Snapshot, src: Path, dst: Path) -> None:
    """Every file the source held before the faulted runs is still at the source or, with the
    same bytes and mtime, at the destination: whatever a run deleted (source cleanup) it had
    delivered first."""
    at_src, at_dst = snapshot(src), snapshot(dst)
    lost = sorted(p for p, was in before.items() if was not in (at_src.get(p), at_dst.get(p)))
    assert not lost, f"{len(lost)} source files are neither at the source nor at {dst}: {lost[:10]}"


def assert_holds_only(top: Path, names: set[str]) -> None:
    found = {p.name for p in top.iterdir()}
    assert found == names, f"{top} holds {sorted(found - names)} besides {sorted(names)}"


def assert_store_intact(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        (result,) = conn.execute("PRAGMA integrity_check").fetchone()
    finally:
        conn.close()
    assert result == "ok", f"{db}: integrity_check says {result}"


@dataclass
class Outcome:
    what: str
    code: int
    stdout: str
    stderr: str
    plan: FaultPlan | None

    def problems(self) -> list[str]:
        """What this run did that no run may do, faults or not."""
        out = []
        if self.code not in ALLOWED:
            out.append(f"exit {self.code}")
        if "Traceback" in self.stderr:
            out.append("a traceback on stderr")
        if "Logging error" in self.stderr:
            out.append("logging's '--- Logging error ---'")
        return out

    def report(self) -> str:
        tail = "\n    ".join(self.stderr.strip().splitlines()[-12:])
        return f"{self.what} under [{self.plan}]: {', '.join(self.problems())}\n    {tail}"


@dataclass
class Campaign:
    """One source tree, its jobs and state, driven by a seeded random generator."""

    root: Path
    seed: int
    files: int = 650
    dirs: int = 5
    rng: random.Random = field(init=False)
    outcomes: list[Outcome] = field(default_factory=list)
    born: int = 0  # files added so far (names stay unique)
    ever: dict[Path, Snapshot] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.src, self.dst = self.root / "src", self.root / "dst"
        self.legacy_src, self.legacy_dst = self.root / "legacy-src", self.root / "legacy-dst"
        self.state = self.root / "state"
        self.config = self.root / "autosync.toml"
        self.metrics = self.root / "metrics" / "autosync.prom"
        for d in (self.src, self.dst, self.legacy_src, self.metrics.parent):
            d.mkdir(parents=True)
        for _ in range(self.files):
            self.add_file(self.src)
        for _ in range(60):
            self.add_file(self.legacy_src)
        shutil.copytree(self.legacy_src, self.legacy_dst)  # copy2: mtimes too
        self.configure()

    def configure(self, **detector_keys: object) -> None:
        def table(name: str, src: Path, dst: Path, **keys: object) -> str:
            keys = {"name": name, "source": str(src), "destination": str(dst), "settle": "0s",
                    "max_files_per_task": 25, "interval": "1s", **keys}  # fmt: skip
            return "[[job]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())

        self.config.write_text(
            table("detector", self.src, self.dst, **detector_keys)
            + table("legacy", self.legacy_src, self.legacy_dst)
        )

    def add_file(self, top: Path) -> None:
        self.born += 1
        path = top / f"run{self.born % self.dirs}" / f"f{self.born:05d}.dat"
        path.parent.mkdir(exist_ok=True)
        data = self.rng.randbytes(self.rng.randint(0, 3000))
        path.write_bytes(data)
        when = LONG_AGO + self.born
        os.utime(path, ns=(when * 10**9, when * 10**9 + self.born))
        rel = path.relative_to(top).as_posix()
        self.ever.setdefault(top, {})[rel] = (
            hashlib.sha256(data).hexdigest(),
            path.stat().st_mtime_ns,
        )

    def delivered(self, top: Path) -> Snapshot:
        """Every file ever put in the source ``top``: what its destination must hold in the end,
        whether or not a run deleted it from the source since."""
        return dict(self.ever.get(top, {}))

    def fill_log(self) -> None:
        """Grow the log file to its rotation size (sparse: no disk used), so that the command
        rotates it first: renames under faults, too."""
        log = self.state / "log" / "globus-autosync.log"
        if log.exists():
            os.truncate(log, max(log.stat().st_size, logs.MAX_BYTES))

    # -- running the CLI ------------------------------------------------------------------
    def environ(self, plan: FaultPlan | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FIU_", "LD_PRELOAD"))}
        env.update(
            GLOBUS_AUTOSYNC_STATE_DIR=str(self.state),
            GLOBUS_AUTOSYNC_CONFIG=str(self.config),
            HOME=str(self.root / "home"),
            LC_ALL="C.UTF-8",
            PYTHONDONTWRITEBYTECODE="1",
        )
        if plan is not None:
            env.update(plan.environ())
        return env

    def argv(self, plan: FaultPlan | None, *args: str) -> list[str]:
        prefix = plan.prefix() if plan is not None else []
        return [*prefix, sys.executable, str(CHILD), *args]

    def cli(self, plan: FaultPlan | None, *args: str) -> Outcome:
        res = subprocess.run(
            self.argv(plan, *args), env=self.environ(plan), cwd=self.root,
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        return self.note(Outcome(" ".join(args), res.returncode, res.stdout, res.stderr, plan))

    def watch_one_cycle(self, plan: FaultPlan | None) -> Outcome:
        """``watch`` until its first cycle of the detector job is logged (or a while), then
        SIGTERM: it must stop on its own."""
        self.add_file(self.src)  # a cycle with something to do is logged: that is what we wait for
        err_path = self.root / "watch.err"
        with open(err_path, "w+") as err:
            proc = subprocess.Popen(
                self.argv(plan, "watch", "--job", "detector"), env=self.environ(plan),
                cwd=self.root, stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
            deadline = time.monotonic() + WATCH_CYCLE_WAIT
            while proc.poll() is None and time.monotonic() < deadline:
                text = err_path.read_text(errors="replace")
                if "detector: scanned" in text or "trying again in" in text:
                    break
                time.sleep(0.05)
            # its signal handlers are in place once it says it started (a slow machine)
            deadline = time.monotonic() + TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                if "watch: started" in err_path.read_text(errors="replace"):
                    break
                time.sleep(0.05)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
        stderr = err_path.read_text(errors="replace")
        return self.note(Outcome("watch (one cycle, SIGTERM)", proc.returncode, out, stderr, plan))

    def note(self, outcome: Outcome) -> Outcome:
        self.outcomes.append(outcome)
        return outcome

    # -- the campaign ---------------------------------------------------------------------
    def faulted(self, runs: int, scenarios: dict[str, Scenario] | None = None) -> None:
        """``runs`` runs, each of a scenario drawn by weight, under faults drawn afresh."""
        table = scenarios or SCENARIOS
        names = sorted(table)
        weights = [table[n].weight for n in names]
        for _ in range(runs):
            name = self.rng.choices(names, weights)[0]
            for _ in range(self.rng.randint(0, 4)):  # work keeps arriving
                self.add_file(self.src)
            if self.rng.random() < 0.2:
                self.fill_log()
            table[name].step(self, FaultPlan.draw(self.rng))

    def clean(self, runs: int = 3) -> Outcome:
        """Runs without faults until nothing is left to do; answers the last one."""
        # the retry backoff of files that failed again and again (up to an hour) has passed
        # by the time the disk is healthy and cron runs again
        conn = sqlite3.connect(self.state / "state.db")
        try:
            conn.execute("UPDATE files SET next_try = 0")
            conn.commit()
        finally:
            conn.close()
        last = self.cli(None, "run")
        for _ in range(runs - 1):
            if last.code == 0:
                break
            last = self.cli(None, "run")
        return last

    def violations(self) -> list[str]:
        return [o.report() for o in self.outcomes if o.problems()]


@dataclass(frozen=True)
class Scenario:
    weight: float
    step: Callable[[Campaign, FaultPlan], Outcome]


def _run(c: Campaign, plan: FaultPlan) -> Outcome:
    args = ["--quiet"] if c.rng.random() < 0.5 else []
    return c.cli(plan, *args, "run", "--metrics-file", str(c.metrics))


def _dry_run(c: Campaign, plan: FaultPlan) -> Outcome:
    return c.cli(plan, "run", "--dry-run")  # writes a scratch copy of the database in TMPDIR


def _check(c: Campaign, plan: FaultPlan) -> Outcome:
    return c.cli(plan, "check")  # creates the database on a first run


def _baseline(c: Campaign, plan: FaultPlan) -> Outcome:
    return c.cli(plan, "baseline", "--job", "legacy")


def _cleanup(c: Campaign, plan: FaultPlan) -> Outcome:
    """A run of the detector job with source cleanup on: it deletes what earlier runs
    delivered (and turning it off afterwards forgets the candidates, which are enrolled anew
    the next time: that is faulted too)."""
    c.configure(delete_after="0s")
    try:
        return c.cli(plan, "run", "--job", "detector")
    finally:
        c.configure()


def _verify(c: Campaign, plan: FaultPlan) -> Outcome:
    """The destination audit (its record in the store is written), half the time repairing
    (which queues again and journals under the job's lock)."""
    repair = ["--repair"] if c.rng.random() < 0.5 else []
    return c.cli(plan, "verify", *repair)


def _scheduled_audit(c: Campaign, plan: FaultPlan) -> Outcome:
    """A run whose scheduled audit is due: it writes where it stands after each directory."""
    c.configure(verify_every="1s", verify_repair=c.rng.random() < 0.5)
    try:
        return c.cli(plan, "run", "--job", "detector")
    finally:
        c.configure()


def assert_audited(state: Path, src: Path, ever: Snapshot) -> None:
    """Every file gone from the source has one line in the deletion log, and no line names a
    file still there (the campaign never makes a file twice under one name)."""
    log = state / "log" / "deletions.jsonl"
    lines = log.read_text("utf-8").splitlines() if log.exists() else []
    audited: list[str] = []
    for line in lines:
        try:
            audited.append(str(json.loads(line)["source"]))
        except ValueError:
            continue  # a line torn by a failed write; the next run wrote it whole
    gone = {str(src / rel) for rel in ever if not (src / rel).exists()}
    assert len(audited) == len(set(audited)), "a deletion recorded twice"
    assert set(audited) == gone, (
        f"deleted without a line: {sorted(gone - set(audited))[:5]}; "
        f"a line but not deleted: {sorted(set(audited) - gone)[:5]}"
    )


SCENARIOS: dict[str, Scenario] = {
    "run": Scenario(6, _run),
    "cleanup": Scenario(2, _cleanup),
    "watch": Scenario(2, Campaign.watch_one_cycle),
    "baseline": Scenario(1, _baseline),
    "dry-run": Scenario(1, _dry_run),
    "check": Scenario(0.5, _check),
    "verify": Scenario(1, _verify),
    "scheduled audit": Scenario(1, _scheduled_audit),
}

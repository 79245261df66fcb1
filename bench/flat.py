"""Measure globus-autosync on one flat directory of a million files, against ``ls -f DIR | wc -l``.

    python bench/flat.py [--files 1000000] [--repeat 3] [--root DIR] [--keep] [--watch-seconds 30]

Makes DIR/day with ``--files`` empty files (unless it holds them already: ``--keep`` leaves it for
another run), records them with ``baseline`` (once), then measures, each step ``--repeat`` times
beside ``ls -f DIR/day | wc -l`` in the same run, every command in a fresh process whose wall
time and peak RSS are its own (bench/run.py's wrapper):

- one new file appeared: ``run --dry-run`` (detected and planned; target <= 3x ls), and the real
  ``run`` that sends and confirms it (local transport);
- a quiet ``run`` in the racy window: the directory was listed less than 2 s after its mtime
  moved, so this run lists it again, and finds nothing (target <= 3x ls);
- a quiet ``run`` once the directory is older than the racy window (stats one directory);
- ``run --dry-run`` after 600 new files (what a cron run a minute sees while 10 files a second
  arrive), and a relist with no digest of the directory's runs stored (as the first one after an
  upgrade or a cleanup); no targets;
- ``watch`` (settle 2 s, batch_window 3 s, interval 10 s) while 10 files a second arrive for
  ``--watch-seconds``: each file's latency from its last write (its mtime) to its arrival at the
  destination (the ctime of the copy, renamed into place when its batch is sent), against the bound
  settle + batch_window + 1 s, and the peak RSS of the watch process (target <= 100 MB).

A benchmark, not a test: it never fails on timing. The directory is made in a new temporary
directory under /tmp (or ``--root``) and removed at the end, with all state.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as run_mod
from run import Sample, bench_env, cli_command, machine, measure

SETTLE, WINDOW, INTERVAL = 2.0, 3.0, 10.0
RACY = 2.0  # walk.RACY_NS, in seconds
BURST = 600  # new files a cron run a minute sees while 10 a second arrive


def make_flat(day: Path, files: int) -> None:
    day.mkdir(parents=True, exist_ok=True)
    fd = os.open(day, os.O_RDONLY | os.O_DIRECTORY)
    try:
        t = time.perf_counter()
        for i in range(files):
            os.close(os.open(f"frame_{i:07d}.tif", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
            if i and i % 200_000 == 0:
                print(f"  {i:,} files, {time.perf_counter() - t:.0f} s", flush=True)
    finally:
        os.close(fd)


def forget_runs(flat: Flat) -> None:
    """As after an upgrade or a cleanup: no digest of the directory's runs is stored."""
    conn = sqlite3.connect(flat.state / "state.db")
    try:
        with conn:
            conn.execute("UPDATE dirs SET chunks=NULL")
    finally:
        conn.close()


def show(rep: int, rows: dict[str, list[Sample]], keys: tuple[str, ...]) -> None:
    for key in keys:
        s = rows[key][-1]
        last = s.stdout.strip().splitlines()[-1] if s.stdout.strip() else ""
        log(f"#{rep + 1} {key}: {s.seconds:.3f} s, {s.maxrss_kb / 1024:.0f} MB; {last}")


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


class Flat:
    def __init__(self, root: Path) -> None:
        self.root, self.day = root / "source", root / "source" / "day"
        self.work = root / "work"
        self.work.mkdir(exist_ok=True)
        self.dest = self.work / "destination"
        self.dest.mkdir(exist_ok=True)
        self.state = self.work / "state"
        self.config = self.work / "config.toml"
        self.config.write_text(
            "[[job]]\n"
            'name = "flat"\n'
            f'source = "{self.root}"\n'
            f'destination = "{self.dest}"\n'
            f'settle = "{SETTLE:g}s"\n'
            f'batch_window = "{WINDOW:g}s"\n'
            f'interval = "{INTERVAL:g}s"\n'
            'full_scan_every = "3650d"\n',
            encoding="utf-8",
        )
        self.serial = 0

    def cli(self, *args: str) -> list[str]:
        return [*cli_command(), "-c", str(self.config), "--state-dir", str(self.state), *args]

    def ls(self) -> list[str]:
        return ["sh", "-c", f"ls -f '{self.day}' | wc -l"]

    def new_file(self, data: bytes = b"new frame") -> Path:
        self.serial += 1
        path = self.day / f"new_{os.getpid()}_{self.serial:06d}.tif"
        path.write_bytes(data)
        old = time.time() - 60  # written a minute ago: settled (settle 2 s)
        os.utime(path, (old, old))
        return path


def watch_round(flat: Flat, seconds: float) -> tuple[list[float], float, int]:
    """(latencies, peak RSS of watch in MB, files not arrived) while 10 files a second arrive."""
    env = bench_env(flat.work)
    proc = subprocess.Popen(flat.cli("--quiet", "watch"), env=env)
    written: list[Path] = []
    try:
        time.sleep(INTERVAL + 2)  # its first cycle (the directory listed once) is over
        stop = time.monotonic() + seconds

        def writer() -> None:
            n = 0
            while time.monotonic() < stop:
                n += 1
                path = flat.day / f"live_{os.getpid()}_{n:06d}.tif"
                path.write_bytes(b"live frame %d" % n)
                written.append(path)
                time.sleep(0.1)

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join()
        deadline = time.monotonic() + 3 * (SETTLE + WINDOW + INTERVAL)
        while time.monotonic() < deadline:
            if all((flat.dest / p.relative_to(flat.root)).exists() for p in written):
                break
            time.sleep(0.2)
        hwm = 0.0
        with open(f"/proc/{proc.pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    latencies, missing = [], 0
    for p in written:
        copy = flat.dest / p.relative_to(flat.root)
        if not copy.exists():
            missing += 1
            continue
        latencies.append(copy.stat().st_ctime - p.stat().st_mtime)
    return latencies, hwm, missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--root", type=Path, default=None, help="made here [a new dir under /tmp]")
    ap.add_argument("--keep", action="store_true", help="keep the directory and the state")
    ap.add_argument("--watch-seconds", type=float, default=30.0)
    args = ap.parse_args(argv)
    root = args.root or Path(tempfile.mkdtemp(prefix="autosync-flat-"))
    root.mkdir(parents=True, exist_ok=True)
    run_mod.ENV = bench_env(root / "work")
    flat = Flat(root)
    print(f"machine: {machine()}")
    try:
        have = sum(1 for _ in os.scandir(flat.day)) if flat.day.is_dir() else 0
        if have < args.files:
            log(f"making {args.files:,} empty files in {flat.day}")
            make_flat(flat.day, args.files)
        if not flat.state.exists():
            base = measure(flat.cli("baseline"))
            log(
                f"baseline: {base.stdout.strip()} in {base.seconds:.1f} s, "
                f"{base.maxrss_kb / 1024:.0f} MB (once; not a target)"
            )
            measure(flat.cli("run"))
        keys = ("ls", "dry", "run", "racy", "quiet", "burst", "nodigest")
        rows: dict[str, list[Sample]] = {k: [] for k in keys}
        for rep in range(args.repeat):
            measure(flat.ls())  # warm
            rows["ls"].append(measure(flat.ls()))
            flat.new_file()
            rows["dry"].append(measure(flat.cli("run", "--dry-run")))
            rows["run"].append(measure(flat.cli("run")))
            rows["racy"].append(measure(flat.cli("run")))  # listed again: racy, confirmed
            time.sleep(RACY + 0.5)
            measure(flat.cli("run"))  # the last racy listing, if any
            time.sleep(RACY + 0.5)
            rows["quiet"].append(measure(flat.cli("run")))
            show(rep, rows, ("ls", "dry", "run", "racy", "quiet"))
        for rep in range(args.repeat):
            for _ in range(BURST):
                flat.new_file()
            rows["burst"].append(measure(flat.cli("run", "--dry-run")))
            measure(flat.cli("run"))  # sends them
            measure(flat.cli("run"))  # relists: their runs are vouched for now
            forget_runs(flat)
            os.utime(flat.day)  # listed again, with no digest of its runs stored
            rows["nodigest"].append(measure(flat.cli("run")))
            show(rep, rows, ("burst", "nodigest"))
            time.sleep(RACY + 0.5)
            measure(flat.cli("run"))  # the racy relist of the last one, digests stored again
        log(f"watch for {args.watch_seconds:.0f} s while 10 files a second arrive")
        latencies, hwm, missing = watch_round(flat, args.watch_seconds)
        ls = statistics.median(s.seconds for s in rows["ls"])
        titles = {
            "ls": ("ls -f DIR | wc -l", None),
            "dry": ("one new file: run --dry-run (detected, planned)", 3.0),
            "run": ("one new file: run (sent, confirmed)", None),
            "racy": ("quiet run in the racy window (relisted)", 3.0),
            "quiet": ("quiet run, directory older than 2 s", None),
            "burst": (f"{BURST} new files: run --dry-run", None),
            "nodigest": ("relisted with no digest of its runs stored", None),
        }
        print(f"\n{args.files:,} files in one directory")
        head = f"{'step':<50} {'wall s':>8} {'x ls':>7} {'target':>7} {'':>4} {'peak RSS':>9}"
        print(head)
        print("-" * len(head))
        for key, (title, target) in titles.items():
            wall = statistics.median(s.seconds for s in rows[key])
            rss = max(s.maxrss_kb for s in rows[key]) / 1024
            ratio = wall / ls
            verdict = "" if target is None else ("ok" if ratio <= target else "MISS")
            shown = f"<={target:g}x" if target else ""
            print(f"{title:<50} {wall:>8.3f} {ratio:>6.2f}x {shown:>7} {verdict:>4} {rss:>6.1f} MB")
        bound = SETTLE + WINDOW + 1.0
        if latencies:
            worst = max(latencies)
            print(
                f"watch, 10 files/s for {args.watch_seconds:.0f} s: {len(latencies)} files, "
                f"latency mean {statistics.mean(latencies):.2f} s, worst {worst:.2f} s (bound "
                f"settle + batch_window + 1 s = {bound:g} s) {'ok' if worst <= bound else 'OVER'};"
                f" peak RSS {hwm:.1f} MB (target <= 100 MB) {'ok' if hwm <= 100 else 'MISS'}"
            )
        if missing:
            print(f"  {missing} files written during watch had not arrived at the end")
        print("  medians of the repeats; 'x ls' compares wall times, start-up included")
    finally:
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

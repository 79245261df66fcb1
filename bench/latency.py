"""Measure `watch`'s latency on the reference tree: from the moment a file stops changing to the
moment it is in a submitted batch.

    python bench/latency.py ROOT [--settle 5s] [--batch-window 10s] [--interval 10s]
                                 [--files 20] [--rounds 5]

ROOT is a tree made by ``bench/make_tree.py``. The bench records the whole tree with
``baseline``, starts ``watch`` (local transport, a throwaway destination), and then, round after
round, writes a few small files into a new leaf directory at a random moment of the watch's
interval. For each round it reads the state database until the files' batch is there, and
reports the batch's submission time minus the last file's mtime, against the bound the README
promises: settle + batch_window + interval + 2 s. A benchmark, not a test: nothing fails on
timing. The new leaf directories and all temporary state are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import bench_env, cli_command, machine

from globus_autosync.config import parse_duration


def submitted_at(db: Path, after: float, files: int, timeout: float) -> float | None:
    """The submission time of the batches, created after ``after``, that hold ``files`` files."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            try:
                rows = conn.execute(
                    "SELECT files, submitted FROM batches WHERE created >= ? "
                    "AND submitted IS NOT NULL",
                    (after,),
                ).fetchall()
            finally:
                conn.close()
        except sqlite3.Error:
            rows = []
        if sum(r[0] for r in rows) >= files:
            return float(max(r[1] for r in rows))
        time.sleep(0.05)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--settle", default="5s")
    ap.add_argument("--batch-window", default="10s")
    ap.add_argument("--interval", default="10s")
    ap.add_argument("--files", type=int, default=20, help="files per round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    root: Path = args.root.resolve()
    if not (root / "2018").is_dir():
        raise SystemExit(f"{root}/2018 not found: make it with bench/make_tree.py {root}")
    settle = parse_duration(args.settle)
    window = parse_duration(args.batch_window)
    interval = parse_duration(args.interval)
    bound = settle + window + interval + 2.0
    work = Path(tempfile.mkdtemp(prefix="autosync-latency-", dir=root.parent))
    made: list[Path] = []
    env = bench_env(work)
    env["GLOBUS_AUTOSYNC_STATE_DIR"] = str(work / "state")
    env["GLOBUS_AUTOSYNC_CONFIG"] = str(work / "config.toml")
    (work / "destination").mkdir()
    (work / "config.toml").write_text(
        "[[job]]\n"
        'name = "latency"\n'
        f"source = {json.dumps(str(root))}\n"
        f"destination = {json.dumps(str(work / 'destination'))}\n"
        f"settle = {json.dumps(args.settle)}\n"
        f"batch_window = {json.dumps(args.batch_window)}\n"
        f"interval = {json.dumps(args.interval)}\n"
        'full_scan_every = "3650d"\n',
        encoding="utf-8",
    )
    cli = cli_command()
    watch: subprocess.Popen[bytes] | None = None
    try:
        t = time.perf_counter()
        subprocess.run([*cli, "baseline"], env=env, check=True, capture_output=True)
        nfiles = sum(1 for _ in root.rglob("*.tif"))
        print(f"machine: {machine()}")
        print(f"tree: {nfiles} files; baseline took {time.perf_counter() - t:.1f} s")
        watch = subprocess.Popen([*cli, "--quiet", "watch"], env=env)
        time.sleep(interval + 1)  # its first cycles are over
        rows = []
        for n in range(args.rounds):
            time.sleep(random.uniform(0, interval))  # any moment of the interval
            leaf = root / "2018" / "latency_Nov2018" / f"round{n:02d}"
            leaf.mkdir(parents=True, exist_ok=True)
            made.append(leaf)
            started = time.time()
            for i in range(args.files):
                (leaf / f"round{n:02d}_{i:05d}.tif").write_bytes(os.urandom(1024))
                time.sleep(0.02)
            stopped = max(p.stat().st_mtime for p in leaf.iterdir())
            at = submitted_at(work / "state" / "state.db", started, args.files, bound * 3)
            latency = (at - stopped) if at is not None else float("nan")
            rows.append(latency)
            verdict = "ok" if latency <= bound else "OVER"
            print(
                f"round {n}: {args.files} files, in a submitted batch {latency:6.2f} s after "
                f"the last write (bound {bound:.0f} s) {verdict}"
            )
        worst = max(rows)
        print(
            f"\nsettle {args.settle}, batch_window {args.batch_window}, interval {args.interval}: "
            f"worst latency {worst:.2f} s, mean {sum(rows) / len(rows):.2f} s, "
            f"bound settle + batch_window + interval + 2 s = {bound:.0f} s"
        )
    finally:
        if watch is not None:
            watch.send_signal(signal.SIGTERM)
            watch.wait(timeout=60)
        for leaf in made:
            shutil.rmtree(leaf, ignore_errors=True)
        if made:
            shutil.rmtree(made[0].parent, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

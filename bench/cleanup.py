"""Measure source cleanup: what it costs a quiet cycle, and how fast it deletes.

    python bench/cleanup.py WORKDIR [--files N] [--delete 100000] [--repeat 3] [--skip-quiet]
                                    [--skip-delete]

(a) The reference tree (``bench/make_tree.py``, 1,289,344 sparse files; ``--files`` scales it,
made in WORKDIR/tree unless it is there) is recorded by ``baseline`` for two jobs on the same
source, one without cleanup and one with ``delete_after = "3650d"`` (nothing old enough to
delete). A quiet ``run`` of each is measured alternately, side by side; the ratio on/off is the
cost of cleanup in a cycle that deletes nothing (target at most 1.10). The first run of the job
with cleanup, which enrols every confirmed file once, is shown on its own row.

(b) ``--delete`` confirmed files (empty, in directories of 2,000) are deleted by one ``run``
(local transport, every copy verified at the destination, journaled, audited), measured side
by side with ``find DIR -type f -delete`` on an identical tree (target at most 3x), with the
run's peak RSS (bound 80 MB). Each repeat makes both trees afresh.

A benchmark, not a test: it never fails on timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_tree
import run as bench_run
from run import Sample, bench_env, cli_command, measure

PER_DIR = 2000

# One cycle of the named job in a fresh process, timed inside it (the engine, without start-up).
IN_JOB = """
import sys, time
from pathlib import Path
from globus_autosync import config
from globus_autosync.engine.step import run_job
cfg = config.load(Path(sys.argv[1]))
(job,) = cfg.select(sys.argv[3])
t = time.perf_counter()
summary = run_job(job, cfg, Path(sys.argv[2]))
print(f"in-process {time.perf_counter() - t:.6f} s")
"""


def write_config(path: Path, jobs: list[dict[str, object]]) -> None:
    lines = []
    for job in jobs:
        lines.append("[[job]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in job.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def cli(config: Path, state: Path, *args: str) -> list[str]:
    return [*cli_command(), "-c", str(config), "--state-dir", str(state), *args]


def median(samples: list[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)


def quiet_cycle(work: Path, files: int, repeat: int) -> None:
    tree = work / "tree"
    if not (tree / str(make_tree.YEAR)).exists():
        print(f"making a tree of {files} files in {tree} ...", flush=True)
        subprocess.run(
            [
                sys.executable,
                str(Path(__file__).parent / "make_tree.py"),
                str(tree),
                "--files",
                str(files),
            ],
            check=True,
        )
    run_dir = work / "quiet"
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "dst").mkdir(parents=True)
    config, state = run_dir / "config.toml", run_dir / "state"
    common = {
        "source": str(tree),
        "destination": str(run_dir / "dst"),
        "settle": "0s",
        "full_scan_every": "3650d",
    }
    write_config(
        config, [{"name": "off", **common}, {"name": "on", **common, "delete_after": "3650d"}]
    )
    for job in ("off", "on"):
        subprocess.run(
            cli(config, state, "baseline", "--job", job), check=True, capture_output=True
        )
    enrol = measure(cli(config, state, "--quiet", "run", "--job", "on"))
    off: list[Sample] = []
    on: list[Sample] = []
    engine = {"off": [], "on": []}  # type: dict[str, list[float]]
    for k in range(2 + repeat):  # two rounds to warm up, then ABBA order: no job always first
        order = ("off", "on") if k % 2 == 0 else ("on", "off")
        for job in order:
            sample = measure(cli(config, state, "--quiet", "run", "--job", job))
            inner = measure([sys.executable, "-c", IN_JOB, str(config), str(state), job])
            if k >= 2:
                (off if job == "off" else on).append(sample)
                seconds = inner.engine_seconds()
                assert seconds is not None
                engine[job].append(seconds)
    ratio = median(on) / median(off)
    e_off, e_on = statistics.median(engine["off"]), statistics.median(engine["on"])
    print(f"\n(a) quiet cycle on a tree of {files} files (medians of {repeat}, alternating)")
    print(f"  run, cleanup off                  {median(off):8.3f} s   engine {e_off:.4f} s")
    print(f"  run, cleanup on, nothing due      {median(on):8.3f} s   engine {e_on:.4f} s")
    print(
        f"  cleanup on / off: {ratio:5.2f}x wall (start-up included), "
        f"{e_on / e_off:5.2f}x the cycle itself (target 1.10x)"
    )
    print(
        f"  first run with cleanup on (enrols {files} files, once) {enrol.seconds:8.3f} s, "
        f"peak RSS {enrol.maxrss_kb / 1024:.0f} MB"
    )


def make_flat_tree(root: Path, count: int, mtime_ns: int) -> None:
    for i in range(count):
        folder = root / f"scan_{i // PER_DIR:04}"
        if i % PER_DIR == 0:
            folder.mkdir(parents=True)
        path = folder / f"frame_{i % PER_DIR:05}.tif"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
        os.utime(path, ns=(mtime_ns, mtime_ns))
    old = (mtime_ns, mtime_ns)
    for folder in root.iterdir():
        os.utime(folder, ns=old)


def deletion(work: Path, count: int, repeat: int) -> None:
    finds: list[float] = []
    tool: list[Sample] = []
    mtime = (int(time.time()) - 86400) * 1_000_000_000
    for k in range(repeat):
        base = work / f"delete{k}"
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        make_flat_tree(base / "find", count, mtime)
        make_flat_tree(base / "src", count, mtime)
        # the destination already holds the copies (as a finished transfer left them)
        subprocess.run(["cp", "-a", f"{base / 'src'}/.", str(base / "dst")], check=True)
        config, state = base / "config.toml", base / "state"
        write_config(
            config,
            [
                {
                    "name": "clean",
                    "source": str(base / "src"),
                    "destination": str(base / "dst"),
                    "settle": "0s",
                    "delete_after": "0s",
                    "max_deletes": count,
                }
            ],
        )
        subprocess.run(cli(config, state, "baseline"), check=True, capture_output=True)
        subprocess.run(cli(config, state, "--quiet", "run"), check=True)  # enrols them
        subprocess.run(["sync"], check=True)
        started = time.perf_counter()
        subprocess.run(["find", str(base / "find"), "-type", "f", "-delete"], check=True)
        finds.append(time.perf_counter() - started)
        sample = measure(cli(config, state, "run"))
        if f"deleted {count} " not in sample.stdout:
            raise SystemExit(f"the run did not delete {count} files:\n{sample.stdout}")
        tool.append(sample)
        left = sum(len(names) for _, _, names in os.walk(base / "src"))
        if left:
            raise SystemExit(f"{left} files left at the source")
        shutil.rmtree(base)
    find_s = statistics.median(finds)
    ratio = median(tool) / find_s
    rss = max(s.maxrss_kb for s in tool) / 1024
    print(f"\n(b) deleting {count} confirmed files (medians of {repeat}, side by side)")
    print(f"  find DIR -type f -delete          {find_s:8.3f} s")
    print(
        f"  run (verify, journal, delete, audit) {median(tool):8.3f} s   {ratio:5.2f}x find "
        "(target 3x)"
    )
    print(f"  peak RSS of the run               {rss:8.0f} MB (bound 80 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--files", type=int, default=make_tree.REFERENCE_FILES)
    parser.add_argument("--delete", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-quiet", action="store_true")
    parser.add_argument("--skip-delete", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    bench_run.ENV = bench_env(args.work)  # bytecode cached, as an installed package has it
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if not args.skip_quiet:
        quiet_cycle(args.work, args.files, args.repeat)
    if not args.skip_delete:
        deletion(args.work, args.delete, args.repeat)


if __name__ == "__main__":
    main()

"""Measure globus-autosync on the reference tree against ``find ROOT -newer STAMP`` in one run.

    python bench/run.py ROOT [--files N] [--files-new 3000] [--repeat 3] [--keep] [--profile]

ROOT is a tree made by ``bench/make_tree.py`` (made here, with ``--files`` files, if ROOT/2018
does not exist yet). Every step runs the real console script in a fresh subprocess wrapper that
reports the wall time and the peak RSS of that step alone (RUSAGE_CHILDREN of the wrapper); each
step runs ``--repeat`` times after the cache is warm and the median is reported, with its ratio to
the median of the ``find`` baseline measured in the same run. The engine's own time (the seconds
of the summary line, without interpreter start-up) is shown beside the wall time.

Steps: (a) ``find ROOT -newer STAMP | wc -l``; ``baseline`` of the whole tree (once); (b) ``run``
on a tree with no change (real, and ``--dry-run``, which first copies the whole state database to
a scratch file); (c) ``run --full`` on a tree with no change (the first one after ``baseline``
on its own row); (d) ``run`` after 3,000 new files appeared in one new leaf directory: a dry
run, and a real run whose destination already holds byte-identical (sparse) copies, so the local
transport confirms them without copying data (everything else, batch journal included, runs).
Then the store's size per confirmed file, after VACUUM and a WAL checkpoint.

A benchmark, not a test: it never fails on timing. Temporary state, configuration and destination
live in a temporary directory that is removed at the end (kept with ``--keep``), as are the new
leaf directories of step (d).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_tree

# Runs a command and reports its own wall time and the peak RSS over its children.
WRAPPER = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
dt = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": dt, "maxrss_kb": ru.ru_maxrss, "rc": p.returncode,
                  "stdout": p.stdout, "stderr": p.stderr}))
"""

# The engine alone, in a fresh process: load the config, time one cycle of the first job.
IN_PROCESS = """
import sys, time
from pathlib import Path
from globus_autosync import config
from globus_autosync.engine.step import run_job
cfg = config.load(Path(sys.argv[1]))
t = time.perf_counter()
summary = run_job(cfg.jobs[0], cfg, Path(sys.argv[2]), full=sys.argv[3] == "full")
dt = time.perf_counter() - t
print(summary.line())
print(f"in-process {dt:.6f} s")
"""

SUMMARY_SECONDS = re.compile(r", (\d+\.\d+) s$", re.MULTILINE)
IN_PROCESS_SECONDS = re.compile(r"^in-process (\d+\.\d+) s$", re.MULTILINE)
SUMMARY_CHANGED = re.compile(r"(\d+) new or changed")
SUMMARY_CONFIRMED = re.compile(r"confirmed (\d+)")


@dataclass
class Sample:
    seconds: float
    maxrss_kb: int
    stdout: str
    stderr: str
    rc: int

    def engine_seconds(self) -> float | None:
        m = IN_PROCESS_SECONDS.search(self.stdout) or SUMMARY_SECONDS.search(self.stdout)
        return float(m.group(1)) if m else None

    def count(self, pattern: re.Pattern[str]) -> int | None:
        m = pattern.search(self.stdout)
        return int(m.group(1)) if m else None


@dataclass
class Step:
    key: str
    title: str
    target: float | None  # as a ratio to find
    samples: list[Sample] = field(default_factory=list)
    note: str = ""
    by_engine: bool = False  # compare the engine's own time with find, not the wall time

    def median(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    def engine(self) -> float | None:
        values = [e for s in self.samples if (e := s.engine_seconds()) is not None]
        return statistics.median(values) if values else None

    def rss_mb(self) -> float:
        return max(s.maxrss_kb for s in self.samples) / 1024


def bench_env(work: Path) -> dict[str, str]:
    """Measured commands may cache bytecode (as an installed package has it), outside the tree."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


ENV: dict[str, str] | None = None


def measure(cmd: list[str], ok: tuple[int, ...] = (0,)) -> Sample:
    out = subprocess.run(
        [sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, check=True, env=ENV
    )
    data = json.loads(out.stdout)
    sample = Sample(data["seconds"], data["maxrss_kb"], data["stdout"], data["stderr"], data["rc"])
    if sample.rc not in ok:
        raise SystemExit(
            f"{' '.join(cmd)} exited with {sample.rc}:\n{sample.stdout[-2000:]}\n"
            f"{sample.stderr[-2000:]}"
        )
    return sample


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "globus-autosync"
    return [str(script)] if script.exists() else [sys.executable, "-m", "globus_autosync"]


class Bench:
    def __init__(self, root: Path, work: Path, files_new: int) -> None:
        self.root, self.work, self.files_new = root, work, files_new
        self.state = work / "state"
        self.dest = work / "destination"
        self.dest.mkdir()
        self.config = work / "config.toml"
        self.config.write_text(
            "[[job]]\n"
            'name = "bench"\n'
            f"source = {json.dumps(str(root))}\n"
            f"destination = {json.dumps(str(self.dest))}\n"
            'transport = "local"\n'
            'settle = "0s"\n'
            'full_scan_every = "3650d"\n',
            encoding="utf-8",
        )
        self.stamp = work / "stamp"
        self.stamp.touch()
        self.new_dirs: list[Path] = []

    def cli(self, *args: str) -> list[str]:
        return [*cli_command(), "-c", str(self.config), "--state-dir", str(self.state), *args]

    def in_process(self, full: bool) -> list[str]:
        return [
            sys.executable,
            "-c",
            IN_PROCESS,
            str(self.config),
            str(self.state),
            "full" if full else "incremental",
        ]

    def find(self) -> list[str]:
        return ["sh", "-c", f"find '{self.root}' -newer '{self.stamp}' | wc -l"]

    # -- step (d): a new leaf directory ----------------------------------------------------
    def new_leaf(self, k: int, mirror: bool) -> Path:
        """``files_new`` sparse frames in a new sample directory of the newest experiment."""
        year = self.root / str(make_tree.YEAR)
        parent = max(year.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        sample = f"BENCHnewpos{os.getpid()}x{k}"
        leaf = parent / sample
        leaf.mkdir()
        self.new_dirs.append(leaf)
        start = time.time_ns() - 3600 * make_tree.NS
        for i in range(1, self.files_new + 1):
            fd = os.open(leaf / f"{sample}_{i:05d}.tif", os.O_WRONLY | os.O_CREAT, 0o644)
            os.ftruncate(fd, 4_000_000)
            os.close(fd)
            os.utime(leaf / f"{sample}_{i:05d}.tif", ns=(start, start + i * 700_000_000))
        if mirror:
            self.mirror(leaf)
        return leaf

    def mirror(self, leaf: Path) -> None:
        """Sparse copies with the same size and mtime at the destination: nothing to copy."""
        target = self.dest / leaf.relative_to(self.root)
        target.mkdir(parents=True, exist_ok=True)
        for entry in os.scandir(leaf):
            st = entry.stat()
            fd = os.open(target / entry.name, os.O_WRONLY | os.O_CREAT, 0o644)
            os.ftruncate(fd, st.st_size)
            os.close(fd)
            os.utime(target / entry.name, ns=(st.st_atime_ns, st.st_mtime_ns))

    def cleanup_new(self) -> None:
        for leaf in self.new_dirs:
            shutil.rmtree(leaf, ignore_errors=True)

    # -- the store ---------------------------------------------------------------------------
    def store_size(self) -> tuple[int, int, int]:
        """(bytes before VACUUM, bytes after VACUUM, confirmed files), each after a checkpoint."""
        db = self.state / "state.db"

        def size() -> int:
            wal = Path(f"{db}-wal")
            return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

        conn = sqlite3.connect(db, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            before = size()
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            after = size()
            files = int(conn.execute("SELECT COALESCE(SUM(nfiles), 0) FROM dirs").fetchone()[0])
        finally:
            conn.close()
        return before, after, files


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    fs = subprocess.run(["df", "-T", "."], capture_output=True, text=True).stdout.split("\n")
    fstype = fs[1].split()[1] if len(fs) > 1 and fs[1] else "?"
    import globus_autosync

    repo = Path(__file__).resolve().parent.parent
    rev = subprocess.run(
        ["git", "-C", str(repo), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, filesystem {fstype}; "
        f"globus-autosync {globus_autosync.__version__} ({rev or 'no git'})"
    )


def fmt_ratio(value: float, base: float) -> str:
    return f"{value / base:.3f}x"


def report(steps: list[Step], store: tuple[int, int, int], files: int) -> None:
    find = steps[0].median()
    head = (
        f"{'step':<44} {'wall s':>8} {'engine s':>9} {'x find':>8} {'target':>8} "
        f"{'':>4} {'peak RSS':>9}"
    )
    print()
    print(head)
    print("-" * len(head))
    for step in steps:
        wall = step.median()
        engine = step.engine()
        compared = engine if step.by_engine and engine is not None else wall
        shown = "-" if engine is None else f"{engine:.4f}" if step.by_engine else f"{engine:.2f}"
        shown = "<0.005" if shown == "0.00" else shown
        target = f"<={step.target:g}x" if step.target is not None else ""
        verdict = ""
        if step.target is not None:
            verdict = "ok" if compared / find <= step.target else "MISS"
        print(
            f"{step.title:<44} {wall:>8.3f} "
            f"{shown:>9} "
            f"{fmt_ratio(compared, find):>8} {target:>8} {verdict:>4} {step.rss_mb():>6.1f} MB"
        )
    before, after, confirmed = store
    per_file = after / max(confirmed, 1)
    print("-" * len(head))
    print(
        f"{'store bytes per confirmed file (VACUUMed)':<44} {per_file:>8.2f} {'':>9} {'':>8} "
        f"{'<=8':>8} {'ok' if per_file <= 8 else 'MISS':>4}"
    )
    print(
        f"  state.db+wal: {before:,} bytes after checkpoint, {after:,} after VACUUM; "
        f"{confirmed:,} confirmed files ({files:,} in the tree)"
    )
    rss = max(s.rss_mb() for s in steps[1:])
    print(f"  peak RSS of any globus-autosync step: {rss:.1f} MB (target <= 80 MB)")
    print("  'x find' compares wall times (interpreter start-up and imports included), except on")
    print("  the run_job row, which compares the cycle's own time; 'engine s' is the cycle's own")
    print("  time (run_job, or the summary line's 2 decimals). Medians of the repeats.")
    if files != make_tree.REFERENCE_FILES:
        print(
            f"  The targets are for the reference tree ({make_tree.REFERENCE_FILES:,} files); "
            f"this one has {files:,}, and fixed costs (start-up) weigh differently."
        )
    for step in steps:
        if step.note:
            print(f"  {step.title.strip()}: {step.note}")


def profile_full(bench: Bench, out: Path) -> None:
    """cProfile of a no-change ``run --full`` (in its own process), top functions by own time."""
    prof = out.with_suffix(".prof")
    cmd = [
        sys.executable,
        "-m",
        "cProfile",
        "-o",
        str(prof),
        "-m",
        "globus_autosync",
        *bench.cli("run", "--full")[len(cli_command()) :],
    ]
    subprocess.run(cmd, check=True, capture_output=True, env=ENV)
    import pstats

    print(f"\nprofile of a no-change run --full ({prof}):")
    stats = pstats.Stats(str(prof), stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(18)
    stats.sort_stats("cumulative").print_stats(18)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the tree (made here if ROOT/2018 is missing)")
    parser.add_argument(
        "--files",
        type=int,
        default=None,
        help=f"files of the tree to make [{make_tree.REFERENCE_FILES:,}]",
    )
    parser.add_argument("--files-new", type=int, default=3000, help="new files for step (d)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step (median)")
    parser.add_argument("--keep", action="store_true", help="keep state, destination, new dirs")
    parser.add_argument("--profile", action="store_true", help="cProfile a no-change full run")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the temporary state goes [a new temp dir beside ROOT]",
    )
    args = parser.parse_args(argv)
    root: Path = args.root.absolute()
    if not (root / str(make_tree.YEAR)).is_dir():
        files = args.files or make_tree.REFERENCE_FILES
        print(f"making the tree: {files:,} files under {root}", flush=True)
        make_tree.main([str(root), "--files", str(files)])
    work = Path(tempfile.mkdtemp(prefix="autosync-bench-", dir=args.workdir or root.parent))
    global ENV
    ENV = bench_env(work)
    bench = Bench(root, work, args.files_new)
    print(f"machine: {machine()}")
    print(f"tree: {root}; work dir: {work}", flush=True)
    repeat = max(1, args.repeat)

    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    try:
        log("warming the cache (find, twice)")
        for _ in range(2):
            measure(bench.find())
        log("baseline (records every file as done)")
        bl = Step("bl", "baseline: record every file as done", None)
        base = measure(bench.cli("baseline"))
        bl.samples.append(base)
        bl.note = "measured once: it records the whole tree, so it cannot be repeated as is"
        m = re.search(r"recorded (\d+) files", base.stdout)
        files = int(m.group(1)) if m else -1
        log(
            f"  {base.stdout.strip()} in {base.seconds:.1f} s, peak RSS "
            f"{base.maxrss_kb / 1024:.1f} MB"
        )
        if args.files is not None and files != args.files:
            print(f"warning: the tree holds {files:,} files, not --files {args.files:,}")
        first = measure(bench.cli("run"))  # full: the first run after baseline
        log(f"  first run: {first.stdout.strip()}")
        c0 = Step("c0", "(c) no change: first --full after baseline", 1.0)
        c0.samples.append(measure(bench.cli("run", "--full")))
        log(f"  first full run: {c0.samples[0].seconds:.3f} s; {c0.samples[0].stdout.strip()}")
        c0.note = (
            "measured once: the walk that trusts the digests baseline noted for the directories "
            "it confirmed whole (a database upgraded from schema 1 has none until its first full "
            "walk, which compares every directory)"
        )
        store = bench.store_size()

        a = Step("a", "(a) find ROOT -newer STAMP | wc -l", None)
        up = Step("up", "    start-up only: globus-autosync --version", None)
        b = Step("b", "(b) no change: run (incremental)", 0.05)
        bi = Step("bi", "(b) no change: run_job alone (in-process)", 0.05, by_engine=True)
        bd = Step("bd", "(b) no change: run --dry-run", None)
        bd.note = (
            "no target of its own: a dry run first copies the state database to a scratch file "
            f"({store[0] / 1e6:.1f} MB here), so that it can plan without writing; the target is "
            "for the real run"
        )
        c = Step("c", "(c) no change: run --full", 1.0)
        cd = Step("cd", "(c) no change: run --full --dry-run", None)
        plan: list[tuple[Step, Callable[[], list[str]]]] = [
            (a, bench.find),
            (up, lambda: [*cli_command(), "--version"]),
            (b, lambda: bench.cli("run")),
            (bi, lambda: bench.in_process(full=False)),
            (bd, lambda: bench.cli("run", "--dry-run")),
            (c, lambda: bench.cli("run", "--full")),
            (cd, lambda: bench.cli("run", "--full", "--dry-run")),
        ]
        for rep in range(repeat):
            for step, cmd in plan:
                step.samples.append(measure(cmd()))
                s = step.samples[-1]
                last = s.stdout.strip().splitlines()[-1]
                log(
                    f"{step.title.strip()} #{rep + 1}: {s.seconds:.3f} s, "
                    f"{s.maxrss_kb / 1024:.1f} MB; {last}"
                )

        n = args.files_new
        dd = Step("dd", f"(d) {n:,} new files: run --dry-run", 0.2)
        dr = Step("dr", f"(d) {n:,} new files: run (no data copied)", 0.2)
        leaf = bench.new_leaf(0, mirror=False)
        log(f"made {n:,} new files in {leaf}")
        for rep in range(repeat):
            dd.samples.append(measure(bench.cli("run", "--dry-run")))
            s = dd.samples[-1]
            log(f"{dd.title} #{rep + 1}: {s.seconds:.3f} s; {s.stdout.strip().splitlines()[-1]}")
            if s.count(SUMMARY_CHANGED) != n:
                dd.note = f"expected {n} new files, the summary says: {s.stdout.splitlines()[-1]}"
        bench.mirror(leaf)
        for rep in range(repeat):
            if rep:
                leaf = bench.new_leaf(rep, mirror=True)
            dr.samples.append(measure(bench.cli("run")))
            s = dr.samples[-1]
            log(f"{dr.title} #{rep + 1}: {s.seconds:.3f} s; {s.stdout.strip().splitlines()[-1]}")
            if s.count(SUMMARY_CONFIRMED) != n:
                dr.note = f"expected {n} confirmed, the summary says: {s.stdout.splitlines()[-1]}"
        dr.note = dr.note or (
            "the destination held identical sparse copies: the run detects, plans, journals, "
            "'sends' (a stat each) and confirms, without copying data; each repeat is a fresh "
            "directory, and each run also relists the one confirmed by the run before"
        )
        report([a, up, bl, b, bi, bd, c0, c, cd, dd, dr], store, files)
        if args.profile:
            bench.cleanup_new()
            measure(bench.cli("run", "--full"))  # forget the removed directories' files
            profile_full(bench, work / "full")
    finally:
        if args.keep:
            print(f"kept: {work} and the new directories {[str(d) for d in bench.new_dirs]}")
        else:
            bench.cleanup_new()
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

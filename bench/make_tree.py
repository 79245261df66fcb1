"""Make the reference tree of the real workload, with sparse files (sizes, but no disk blocks).

    python bench/make_tree.py ROOT [--files N] [--seed S] [--jobs J]

The default is one year of a detector: 1,289,344 files in about 720 leaf directories of 1,500 to
2,100 sequentially numbered frames each, in deep paths such as

    ROOT/2018/YAGline9test_Sep2018/LaB6pos3/LaB6pos3_01791.tif

Every frame of one sample directory has the same size (2 to 33 MB: a detector writes fixed-size
frames); mtimes are spread over 2018, increase by 0.2 to 2 s from one frame to the next and carry
nanoseconds, as ext4 keeps them. Directory mtimes are set last, bottom up, to the moment their
last entry appeared. ``--files N`` scales the number of directories in proportion. The tree is the
same for a given (N, seed), whatever ``--jobs``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

REFERENCE_FILES = 1_289_344
REFERENCE_DIRS = 720
MIN_PER_DIR, MAX_PER_DIR = 1_500, 2_100
YEAR = 2018
YEAR_START = 1_514_764_800  # 2018-01-01T00:00:00Z
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
MATERIALS = (
    "YAGline", "LaB6cal", "CeO2std", "Si111scan", "Fe3O4run", "GaNwire", "ZnOfilm", "Cu3Au",
    "NiTi", "MoS2flake", "BaTiO3", "Al2O3sap", "PbTiO3", "SrTiO3sub", "VO2film", "Ptfoil",
)  # fmt: skip
SUFFIXES = ("test", "run", "scan", "", "cal", "b")
POSITIONS = ("pos", "spot", "grain", "area", "pt")
NS = 1_000_000_000


@dataclass(frozen=True)
class Leaf:
    index: int
    rel: str  # 2018/<experiment>_<Mon>2018/<sample>
    sample: str
    files: int
    size: int
    start_ns: int  # the first frame's mtime
    seed: int


def split_counts(total: int, parts: int, rng: random.Random) -> list[int]:
    """``parts`` counts from MIN_PER_DIR to MAX_PER_DIR (when possible) summing to ``total``."""
    if parts <= 1:
        return [total]
    counts = [rng.randint(MIN_PER_DIR, MAX_PER_DIR) for _ in range(parts)]
    diff = total - sum(counts)
    # spread the difference one file at a time over directories with room left
    step = 1 if diff > 0 else -1
    i = 0
    while diff:
        j = i % parts
        room = MAX_PER_DIR - counts[j] if step > 0 else counts[j] - MIN_PER_DIR
        if room > 0 or i >= 2 * parts * (MAX_PER_DIR - MIN_PER_DIR + 1):
            k = min(abs(diff), max(room, 1))
            counts[j] += step * k
            diff -= step * k
        i += 1
    return counts


def plan_tree(files: int, seed: int) -> list[Leaf]:
    """Where every leaf directory goes, how many frames it holds, their size and first mtime."""
    rng = random.Random(seed)
    ndirs = max(1, round(REFERENCE_DIRS * files / REFERENCE_FILES))
    counts = split_counts(files, ndirs, rng)
    per_month = [ndirs // 12 + (1 if m < ndirs % 12 else 0) for m in range(12)]
    leaves: list[Leaf] = []
    month_start = YEAR_START
    for month, n in enumerate(per_month):
        days = MONTH_DAYS[month]
        # a few experiments a month, each with a handful of samples
        experiments: list[str] = []
        while len(experiments) < max(1, min(n, rng.randint(2, 5))):
            name = f"{rng.choice(MATERIALS)}{rng.randint(1, 12)}{rng.choice(SUFFIXES)}"
            if name not in experiments:
                experiments.append(name)
        # leaf starts in time order across the month, with room for their runs
        starts = sorted(rng.uniform(0, days * 86400 - 3 * 3600) for _ in range(n))
        used: set[str] = set()
        for k in range(n):
            exp = experiments[k * len(experiments) // max(n, 1)]
            while True:
                pos = rng.choice(POSITIONS)
                sample = f"{rng.choice(MATERIALS)}{pos}{rng.randint(1, 40)}"
                if f"{exp}/{sample}" not in used:
                    used.add(f"{exp}/{sample}")
                    break
            index = len(leaves)
            leaves.append(
                Leaf(
                    index=index,
                    rel=f"{YEAR}/{exp}_{MONTHS[month]}{YEAR}/{sample}",
                    sample=sample,
                    files=counts[index],
                    size=rng.randint(2_000_000, 33_000_000),
                    start_ns=(month_start + int(starts[k])) * NS + rng.randrange(NS),
                    seed=rng.randrange(1 << 62),
                )
            )
        month_start += days * 86400
    return leaves


def make_leaf(root: str, leaf: Leaf) -> int:
    """Create one leaf directory's sparse frames; answers its last mtime in ns."""
    rng = random.Random(leaf.seed)
    path = os.path.join(root, leaf.rel)
    os.makedirs(path, exist_ok=True)
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    mtime = leaf.start_ns
    try:
        for i in range(1, leaf.files + 1):
            fd = os.open(f"{leaf.sample}_{i:05d}.tif", flags, 0o644, dir_fd=dfd)
            try:
                os.ftruncate(fd, leaf.size)
                os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)
            if i < leaf.files:
                mtime += rng.randint(200_000_000, 2_000_000_000)
    finally:
        os.close(dfd)
    os.utime(path, ns=(mtime, mtime))
    return mtime


def set_dir_times(root: str, leaves: list[Leaf], last: dict[str, int]) -> None:
    """Each directory above the leaves takes the mtime of its newest child, bottom up."""
    newest: dict[str, int] = {}
    for leaf in leaves:
        parts = leaf.rel.split("/")
        for depth in range(len(parts) - 1, 0, -1):
            rel = "/".join(parts[:depth])
            newest[rel] = max(newest.get(rel, 0), last[leaf.rel])
    for rel in sorted(newest, key=lambda r: -r.count("/")):
        os.utime(os.path.join(root, rel), ns=(newest[rel], newest[rel]))


def _make(args: tuple[str, Leaf]) -> tuple[str, int]:
    root, leaf = args
    return leaf.rel, make_leaf(root, leaf)


def make_tree(root: str, files: int, seed: int, jobs: int) -> tuple[list[Leaf], float]:
    leaves = plan_tree(files, seed)
    started = time.perf_counter()
    os.makedirs(root, exist_ok=True)
    last: dict[str, int] = {}
    work = [(root, leaf) for leaf in leaves]
    if jobs > 1 and len(leaves) > 1:
        with ProcessPoolExecutor(jobs) as pool:
            last.update(pool.map(_make, work, chunksize=4))
    else:
        last.update(map(_make, work))
    set_dir_times(root, leaves, last)
    return leaves, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="where to make the tree (created; must not hold one yet)")
    parser.add_argument("--files", type=int, default=REFERENCE_FILES, help="number of files")
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    args = parser.parse_args(argv)
    if args.files < 1:
        parser.error("--files must be at least 1")
    if os.path.exists(os.path.join(args.root, str(YEAR))):
        parser.error(f"{args.root}/{YEAR} exists already; remove it or pick another ROOT")
    leaves, seconds = make_tree(args.root, args.files, args.seed, args.jobs)
    total = sum(leaf.files for leaf in leaves)
    apparent = sum(leaf.files * leaf.size for leaf in leaves)
    sizes = sorted(leaf.files for leaf in leaves)
    print(
        f"made {total:,} sparse files ({apparent / 1e12:.2f} TB apparent) in {len(leaves)} leaf "
        f"directories ({sizes[0]:,} to {sizes[-1]:,} files each) under {args.root}/{YEAR} "
        f"in {seconds:.1f} s ({total / seconds:,.0f} files/s)"
    )
    print(
        f"example: {os.path.join(args.root, leaves[len(leaves) // 2].rel)}/"
        f"{leaves[len(leaves) // 2].sample}_00001.tif"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Measure the local transport against ``cp -a SRC/. DST/ && sync`` and ``rsync -a SRC/ DST/ &&
sync``, side by side in one run.

    python bench/datapath.py [--shape big|small|both] [--repeat 3] [--transfers 4 --transfers 1]
                         [--before SRC_DIR] [--root /tmp] [--big-files 500] [--small-files 20000]

Two data sets, made in a temporary directory under ``--root`` and removed at the end: ``big``,
500 files of 4 MiB in two directories (2 GiB); ``small``, 20,000 files of 64 KiB in ten
directories (1.25 GiB). The contents are random (nothing to gain from compression or holes).

Each round copies the data set into an empty destination with every tool, in an order that
rotates from round to round: cp, rsync, and one ``globus-autosync run`` (a fresh state database
each time: the scan, the journal and the store are in the time, as a user sees them) for each
``--transfers`` value (``default``: no key in the config), and with ``--before`` for the code
in SRC_DIR (a ``src`` directory, e.g. ``git archive OLD src | tar -x -C /tmp/old``; its config
has no ``transfers`` key). Every step ends with ``sync``, inside its time, like the baselines
(globus-autosync has made its files durable before it exits; the ``sync`` flushes what else is
dirty). Between steps the destination is removed and ``sync`` run, outside the times. Medians of
``--repeat`` rounds, and their ratios to cp's and rsync's medians, are printed; so are the peak
RSS of each globus-autosync run. Every run is checked: all files confirmed, sizes and mtimes as
the source's, and the bytes of a sample of files.

A benchmark, not a test: it never fails on timing. The machine is shared: run it once, not in a
loop.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SHAPES = {"big": (500, 4 << 20, 2), "small": (20_000, 64 << 10, 10)}  # files, bytes, dirs
CONFIRMED = re.compile(r"confirmed (\d+), failed (\d+), skipped (\d+)")


@dataclass
class Tool:
    label: str
    kind: str  # "cp", "rsync" or "autosync"
    transfers: int | None = None  # autosync: the key's value; None: not in the config
    code: Path | None = None  # autosync: a src directory to run instead of the installed one
    seconds: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)


def make_data(top: Path, files: int, size: int, dirs: int) -> None:
    when = time.time() - 3600
    per_dir = -(-files // dirs)
    for i in range(files):
        d = top / f"run_{i // per_dir:02d}"
        if i % per_dir == 0:
            d.mkdir(parents=True)
        path = d / f"frame_{i:06d}.tif"
        with open(path, "wb") as fh:
            fh.write(os.urandom(size))
        os.utime(path, (when, when))
    subprocess.run(["sync"], check=True)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run ``cmd`` then ``sync``; answers the wall seconds of both, the peak RSS of ``cmd`` (kB)
    and its output."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    subprocess.run(["sync"], check=True)
    dt = time.perf_counter() - t
    text = out.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}\n{text}")
    return dt, usage.ru_maxrss, text


def autosync_env(code: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    return env


def run_autosync(tool: Tool, src: Path, dst: Path, work: Path, files: int) -> None:
    state = work / "state"
    shutil.rmtree(state, ignore_errors=True)
    config = work / "bench.toml"
    lines = [
        "[[job]]",
        'name = "bench"',
        f"source = {json.dumps(str(src))}",
        f"destination = {json.dumps(str(dst))}",
        'settle = "0s"',
    ]
    if tool.transfers is not None:
        lines.append(f"transfers = {tool.transfers}")
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "globus_autosync", "-c", str(config), "--state-dir", str(state)]
    dt, rss, out = timed([*cmd, "run"], autosync_env(tool.code))
    m = CONFIRMED.search(out)
    if not m or (int(m.group(1)), int(m.group(2)), int(m.group(3))) != (files, 0, 0):
        raise SystemExit(f"{tool.label}: not every file was confirmed:\n{out}")
    tool.seconds.append(dt)
    tool.rss_kb.append(rss)


def verify(src: Path, dst: Path, files: int, rng: random.Random) -> None:
    names = [p.relative_to(src) for p in src.rglob("*.tif")]
    assert len(names) == files
    for rel in names:
        s, d = (src / rel).stat(), (dst / rel).stat()
        if (s.st_size, s.st_mtime_ns) != (d.st_size, d.st_mtime_ns):
            raise SystemExit(f"{dst / rel}: size or mtime differ from the source's")
    for rel in rng.sample(names, min(10, len(names))):
        if (src / rel).read_bytes() != (dst / rel).read_bytes():
            raise SystemExit(f"{dst / rel}: bytes differ from the source's")
    parts = [p for p in dst.rglob(".autosync-*.part")]
    if parts:
        raise SystemExit(f"temporary files left behind: {parts[:3]}")


def empty(dst: Path) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir()
    subprocess.run(["sync"], check=True)


def machine(root: Path) -> str:
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    fs = subprocess.run(["df", "-T", str(root)], capture_output=True, text=True).stdout
    rows = fs.splitlines()
    fstype = rows[1].split()[1] if len(rows) > 1 else "?"
    cp = subprocess.run(["cp", "--version"], capture_output=True, text=True).stdout.splitlines()
    rsync = subprocess.run(["rsync", "--version"], capture_output=True, text=True).stdout
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"Linux {platform.release()}, {fstype} ({root}); {cp[0] if cp else 'cp ?'}; "
        f"{rsync.splitlines()[0] if rsync else 'rsync ?'}"
    )


def bench_shape(shape: str, tools: list[Tool], work: Path, repeat: int, files: int) -> None:
    _, size, dirs = SHAPES[shape]
    src, dst = work / "src", work / "dst"
    t = time.perf_counter()
    make_data(src, files, size, dirs)
    total = files * size
    made = time.perf_counter() - t
    print(
        f"\n{shape}: {files} files of {size >> 10} KiB in {dirs} directories "
        f"({total / (1 << 30):.2f} GiB), made in {made:.1f} s",
        flush=True,
    )
    rng = random.Random(13)
    for tool in tools:
        tool.seconds.clear()
        tool.rss_kb.clear()
    for n in range(repeat):
        order = tools[n % len(tools) :] + tools[: n % len(tools)]
        for tool in order:
            empty(dst)
            if tool.kind == "cp":
                dt, _, _ = timed(["cp", "-a", f"{src}/.", f"{dst}/"])
                tool.seconds.append(dt)
            elif tool.kind == "rsync":
                dt, _, _ = timed(["rsync", "-a", f"{src}/", f"{dst}/"])
                tool.seconds.append(dt)
            else:
                run_autosync(tool, src, dst, work, files)
            verify(src, dst, files, rng)
            print(f"  round {n + 1}: {tool.label}: {tool.seconds[-1]:.2f} s", flush=True)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.rmtree(src, ignore_errors=True)
    cp = statistics.median(tools[0].seconds)
    rsync = statistics.median(tools[1].seconds)
    print(f"{shape}: medians of {repeat}")
    width = max(len(tool.label) for tool in tools)
    print(f"  {'':{width}} {'median':>8} {'x cp':>6} {'x rsync':>8} {'MB/s':>6} {'peak RSS':>9}")
    for tool in tools:
        med = statistics.median(tool.seconds)
        rss = f"{max(tool.rss_kb) / 1024:.0f} MB" if tool.rss_kb else ""
        print(
            f"  {tool.label:{width}} {med:7.2f}s {med / cp:5.2f}x {med / rsync:7.2f}x "
            f"{total / med / 1e6:6.0f} {rss:>9}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shape", choices=["big", "small", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--transfers",
        action="append",
        default=None,
        help="'default' (no key) or a number; repeatable (default: both)",
    )
    ap.add_argument("--before", type=Path, help="a src directory of other code to measure too")
    ap.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--big-files", type=int, default=SHAPES["big"][0])
    ap.add_argument("--small-files", type=int, default=SHAPES["small"][0])
    args = ap.parse_args()
    if shutil.which("rsync") is None:
        print("rsync is not installed (apt-get install -y rsync)", file=sys.stderr)
        return 2
    tools = [Tool("cp -a SRC/. DST/ && sync", "cp"), Tool("rsync -a SRC/ DST/ && sync", "rsync")]
    for value in args.transfers or ["default", "1"]:
        number = None if value == "default" else int(value)
        what = "default transfers" if number is None else f"transfers = {number}"
        tools.append(Tool(f"globus-autosync run && sync ({what})", "autosync", number))
    if args.before is not None:
        code = args.before.resolve()
        where = subprocess.run(
            [sys.executable, "-c", "import globus_autosync; print(globus_autosync.__file__)"],
            env=autosync_env(code),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not where.startswith(str(code)):
            print(f"--before {code}: Python imports globus_autosync from {where}", file=sys.stderr)
            return 2
        tools.append(Tool(f"globus-autosync run && sync (code in {code})", "autosync", None, code))
    print(f"machine: {machine(args.root)}")
    shapes = ["big", "small"] if args.shape == "both" else [args.shape]
    work = Path(tempfile.mkdtemp(prefix="autosync-bench-copy-", dir=args.root))
    try:
        for shape in shapes:
            files = args.big_files if shape == "big" else args.small_files
            bench_shape(shape, tools, work, args.repeat, files)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

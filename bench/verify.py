"""Time ``globus-autosync verify`` on the reference tree side by side with ``find`` (the audit
of a local destination should cost at most 1.5x ``find DST -printf '%s %T@\\n'``, in at most
100 MB).

    python bench/verify.py ROOT [--repeat 3]

ROOT is a tree made by ``bench/make_tree.py`` (1.29 M files). Its ``baseline`` goes into a
temporary state directory, with the job's destination a symbolic link to ROOT itself: the
destination then holds every confirmed file, as after a year of service, and the audit lists
and compares all of them. The console script (its start-up included) and ``find`` run
alternately, after a warm run of each (the tree's metadata in the page cache for both); the
medians, their ratio and the audit's peak memory (the resident memory of it and its worker
processes together, sampled) are printed.

A benchmark, not a test: it never fails on timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def script() -> str:
    return str(Path(sys.executable).parent / "globus-autosync")


def tree_rss(pid: int) -> int:
    """The resident memory (KiB) of a process and of every process below it, now."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    family, total = {pid}, 0
    for p in sorted(parent):  # children have higher pids here, as a rule: go round twice
        if parent[p] in family:
            family.add(p)
    for p in sorted(parent):
        if parent[p] in family:
            family.add(p)
    for p in family:
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next(int(x.split()[1]) for x in fh if x.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total


def timed(cmd: list[str], env: dict[str, str], sample: bool = False) -> tuple[float, int]:
    """Wall seconds of one command, its output thrown away, and (``sample``) the peak of the
    resident memory of it and its worker processes together (KiB), sampled every 20 ms."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    peak = 0
    while sample and proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.02)
    code = proc.wait()
    took = time.perf_counter() - t
    if code not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed with exit code {code}")
    return took, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    try:
        dst = work / "dst"
        dst.symlink_to(args.root.resolve(), target_is_directory=True)
        cfg = work / "verify.toml"
        cfg.write_text(
            f'[[job]]\nname = "tree"\nsource = "{args.root}"\ndestination = "{dst}"\n'
            'settle = "0s"\n'
        )
        env = {**os.environ, "GLOBUS_AUTOSYNC_CONFIG": str(cfg),
               "GLOBUS_AUTOSYNC_STATE_DIR": str(work / "state")}  # fmt: skip
        t = time.perf_counter()
        subprocess.run([script(), "--quiet", "baseline"], env=env, check=True)
        print(f"baseline of {args.root}: {time.perf_counter() - t:.1f} s", flush=True)
        verify = [script(), "verify"]
        find = ["find", f"{dst}/", "-printf", "%s %T@\\n"]
        timed(verify, env), timed(find, env)  # warm: metadata in the page cache for both
        ours, theirs = [], []
        for _ in range(args.repeat):  # timed without sampling (it costs a core a little)
            ours.append(timed(verify, env)[0])
            theirs.append(timed(find, env)[0])
        rss = timed(verify, env, sample=True)[1]
        out = subprocess.run(verify, env=env, capture_output=True, text=True, check=False)
        print(out.stdout.strip().splitlines()[-1])
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"verify (console script)   {a:7.2f} s   (medians of {args.repeat}, alternating)")
        print(f"find -printf '%s %T@'     {b:7.2f} s")
        print(f"ratio                     {a / b:7.2f}x   (target: at most 1.5x)")
        print(f"verify's peak memory      {rss / 1024:7.1f} MB (with its worker processes; "
              "target: at most 100 MB)")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

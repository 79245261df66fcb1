"""What an ``[alerts]`` table costs a quiet cron ``run`` (health unchanged: nothing to send).

    python bench/alerts.py [--dirs 50] [--files 40] [--repeat 15]

Makes a small tree, runs it once so everything is confirmed, then times a no-change ``run`` (a
fresh console-script process, as from cron) with and without an ``[alerts]`` table (a webhook
and e-mail, neither reachable: a quiet run must not try them), interleaved, and prints the
medians and their ratio. It also reports whether the quiet run with alerts imported smtplib or
urllib.request (it should not: they are imported only to send). A benchmark, not a test: it
never fails on timing.
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

SCRIPT = Path(sys.executable).parent / "globus-autosync"
ALERTS = """[alerts]
webhook = "http://127.0.0.1:9/hooks/unreachable"
email = ["ops@example.org"]
smtp_host = "127.0.0.1"
smtp_port = 9
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dirs", type=int, default=50)
    ap.add_argument("--files", type=int, default=40, help="files per directory")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    exe = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "globus_autosync"]
    root = Path(tempfile.mkdtemp(prefix="autosync-bench-alerts-"))
    try:
        src, dst = root / "src", root / "dst"
        dst.mkdir()
        for d in range(args.dirs):
            (src / f"d{d:03d}").mkdir(parents=True)
            for f in range(args.files):
                (src / f"d{d:03d}" / f"f{f:04d}.dat").write_bytes(b"x")
        job = f'[[job]]\nname = "det"\nsource = "{src}"\ndestination = "{dst}"\nsettle = "0s"\n'
        plain, alerted = root / "plain.toml", root / "alerts.toml"
        plain.write_text(job)
        alerted.write_text(ALERTS + job)
        state = root / "state"

        def run(config: Path, env: dict[str, str] | None = None) -> float:
            cmd = [*exe, "-c", str(config), "--state-dir", str(state), "--quiet", "run"]
            t = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            took = time.perf_counter() - t
            if res.returncode != 0:
                raise SystemExit(f"run failed ({res.returncode}): {res.stderr}")
            return took

        run(plain)
        old = time.time() - 3600  # directories older than the racy window: a quiet run trusts them
        for dirpath, _, _ in os.walk(src):
            os.utime(dirpath, (old, old))
        run(alerted)  # the first run with alerts records the job's health (ok): no message
        times: dict[str, list[float]] = {"without [alerts]": [], "with [alerts]": []}
        for _ in range(args.repeat):
            times["without [alerts]"].append(run(plain))
            times["with [alerts]"].append(run(alerted))
        env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
        cmd = [*exe, "-c", str(alerted), "--state-dir", str(state), "--quiet", "run"]
        imports = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False).stderr
        base = statistics.median(times["without [alerts]"])
        print(
            f"quiet run of {args.dirs * args.files} files in {args.dirs} directories, "
            f"median of {args.repeat}:"
        )
        for name, values in times.items():
            med = statistics.median(values)
            print(f"  {name:18} {med * 1000:7.1f} ms  {med / base:5.2f}x")
        for module in ("smtplib", "urllib.request", "email.message"):
            imported = any(
                line.rstrip().endswith(f"| {module}") or line.rstrip().endswith(f" {module}")
                for line in imports.splitlines()
            )
            print(f"  {module} imported by a quiet run with alerts: {'yes' if imported else 'no'}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Measure a quiet cycle of a source listed through Globus (scan = "globus").

    python bench/remote.py WORKDIR [--dirs 100] [--files 100000] [--rates 20,5] [--repeat 2]

A remote tree of ``--files`` empty files in ``--dirs`` directories is served by the emulated
Transfer service (tests/emulator, over HTTP on 127.0.0.1, driven by the real globus-sdk), and
recorded by ``baseline``. Then quiet ``run``s are measured (nothing new: every directory is
listed, nothing is sent), at each pace of ``--rates`` requests a second. Printed per rate: the
listing requests the run made (counted at the emulator), its wall time, and the bound the pace
sets, (requests - 1) / rate; the ratio wall / bound is what the tool adds to its pace (start-up,
the store, the emulator's own listing work). Side by side, the same listings made back to back
by a bare globus-sdk client, unpaced: what the emulated service itself costs.

A benchmark, not a test: it never fails on timing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator import TransferEmulator  # noqa: E402
from tests.emulator.fixtures import DST_COLLECTION, SRC_COLLECTION  # noqa: E402

LS = f"/v0.10/operation/endpoint/{SRC_COLLECTION}/ls"


def make_tree(top: Path, dirs: int, files: int) -> None:
    per = files // dirs
    for d in range(dirs):
        here = top / "src" / f"run_{d:03}"
        here.mkdir(parents=True, exist_ok=True)
        for i in range(per):
            path = here / f"frame_{i:05}.tif"
            if not path.exists():
                path.touch()
                os.utime(path, (1_500_000_000 + i, 1_500_000_000 + i))


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "globus-autosync"
    return [str(script)] if script.exists() else [sys.executable, "-m", "globus_autosync"]


def environ(emu: TransferEmulator, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLOBUS_SDK_")}
    env.update(emu.env())
    env.update(
        GLOBUS_AUTOSYNC_CLIENT_ID=emu.DEFAULT_CLIENT_ID,
        GLOBUS_AUTOSYNC_CLIENT_SECRET=emu.DEFAULT_CLIENT_SECRET,
        GLOBUS_AUTOSYNC_STATE_DIR=str(work / "state"),
        GLOBUS_AUTOSYNC_CONFIG=str(work / "config.toml"),
        HOME=str(work / "home"),
    )
    return env


def write_config(work: Path, rate: float) -> None:
    job = {
        "name": "remote",
        "scan": "globus",
        "transport": "globus",
        "source_collection": SRC_COLLECTION,
        "source": "/src",
        "destination_collection": DST_COLLECTION,
        "destination": "/dst",
        "settle": "0s",
        "requests_per_second": rate,
    }
    lines = ["[[job]]"] + [f"{k} = {json.dumps(v)}" for k, v in job.items()]
    (work / "config.toml").write_text("\n".join(lines) + "\n")


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.monotonic()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {out.returncode}:\n{out.stderr[-2000:]}")
    return seconds, out.stdout.strip()


def bare_listing(emu: TransferEmulator, dirs: int) -> float:
    """The same listings, back to back, by a bare SDK client: the service's own cost."""
    import globus_sdk

    os.environ.update(emu.env())  # the SDK reads its service URLs from the environment
    memory = globus_sdk.GlobusAppConfig(token_storage="memory")
    app = globus_sdk.ClientApp(
        "bench",
        client_id=emu.DEFAULT_CLIENT_ID,
        client_secret=emu.DEFAULT_CLIENT_SECRET,
        config=memory,
    )
    tc = globus_sdk.TransferClient(app=app)
    try:
        tc.operation_ls(SRC_COLLECTION, path="/src", limit=1)  # log in first
        started = time.monotonic()
        tc.operation_ls(SRC_COLLECTION, path="/src", limit=100_000)
        for d in range(dirs):
            tc.operation_ls(SRC_COLLECTION, path=f"/src/run_{d:03}", limit=100_000)
        return time.monotonic() - started
    finally:
        tc.close()
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--dirs", type=int, default=100)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--rates", default="20,5")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    work: Path = args.work.absolute()
    (work / "home").mkdir(parents=True, exist_ok=True)
    (work / "cluster" / "dst").mkdir(parents=True, exist_ok=True)
    print(f"making {args.files} files in {args.dirs} directories ...", flush=True)
    make_tree(work / "collection", args.dirs, args.files)
    emu = TransferEmulator({SRC_COLLECTION: work / "collection", DST_COLLECTION: work / "cluster"})
    emu.start()
    try:
        env = environ(emu, work)
        rates = [float(r) for r in args.rates.split(",")]
        write_config(work, max(rates))
        seconds, line = timed([*cli_command(), "baseline"], env)
        print(f"baseline: {seconds:.1f} s: {line}")
        bare = [bare_listing(emu, args.dirs) for _ in range(args.repeat)]
        print(
            f"\n{'pace (req/s)':>12} {'requests':>9} {'wall (s)':>9} {'bound (s)':>10} "
            f"{'wall/bound':>10} {'max RSS':>9}"
        )
        for rate in rates:
            write_config(work, rate)
            walls, counts = [], []
            for _ in range(args.repeat):
                before = len(emu.arrivals)
                wall, line = timed([*cli_command(), "--quiet", "run"], env)
                walls.append(wall)
                counts.append(sum(1 for a in emu.arrivals[before:] if a[2] == LS))
            requests = counts[-1]
            bound = (requests - 1) / rate
            wall = statistics.median(walls)
            rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(
                f"{rate:>12g} {requests:>9} {wall:>9.2f} {bound:>10.2f} {wall / bound:>10.2f} "
                f"{rss:>7.0f}MB"
            )
        print(
            f"\nthe same {args.dirs + 1} listings back to back, unpaced, bare SDK client: "
            f"{statistics.median(bare):.2f} s"
        )
    finally:
        emu.stop()


if __name__ == "__main__":
    main()

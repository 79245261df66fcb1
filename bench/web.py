"""Time the status page and each API answer against a store that holds the reference tree,
side by side with ``status --json`` on the same store (issue 23: each within 100 ms).

    python bench/web.py ROOT [--state DIR] [--batches 10000] [--days 30] [--repeat 5]

ROOT is a tree made by ``bench/make_tree.py`` (1.29 M files). Its ``baseline`` goes into a
temporary state directory (or ``--state``, kept and reused when it already holds one); then
``--batches`` succeeded batches spread over ``--days`` days and a history row per 5 minutes over
the same days are added, as a month of service would leave them. Each answer is rendered by
``web.app.App.handle`` in this process (no HTTP, no interpreter start-up), ``--repeat`` times
after a first warm one; the median is shown. ``status --json`` is timed the same way (the rows
it builds, dumped as JSON) and as the real console script (with its start-up). Then the cost of
the history on a quiet cycle: ``record_run`` with and without the history row it may add.

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
import tempfile
import time
import uuid
from pathlib import Path

from globus_autosync import config
from globus_autosync.monitoring import status as report
from globus_autosync.store import Store, history
from globus_autosync.web.app import App

PATHS = ["/", "/?fragment=1", "/jobs/tree", "/api/v1/status", "/api/v1/jobs/tree/batches",
         "/api/v1/jobs/tree/batches?limit=1000", "/api/v1/jobs/tree/actions", "/healthz",
         "/metrics"]  # fmt: skip


def script() -> str:
    return str(Path(sys.executable).parent / "globus-autosync")


def median_ms(fn: object, repeat: int) -> float:
    assert callable(fn)
    fn()  # warm
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def prepare(root: Path, state: Path, cfg_path: Path, batches: int, days: int) -> None:
    dst = state.parent / "dst"
    dst.mkdir(exist_ok=True)
    cfg_path.write_text(
        f'[[job]]\nname = "tree"\nsource = "{root}"\ndestination = "{dst}"\nsettle = "0s"\n'
    )
    env = {"GLOBUS_AUTOSYNC_CONFIG": str(cfg_path), "GLOBUS_AUTOSYNC_STATE_DIR": str(state)}
    if (state / "state.db").exists():
        return
    t = time.perf_counter()
    subprocess.run([script(), "baseline"], env={**os.environ, **env}, check=True)
    print(f"baseline of {root}: {time.perf_counter() - t:.1f} s", flush=True)
    store = Store.open(state)
    job = store.jobs.ensure("tree")
    now = time.time()
    span = days * 86400.0
    with store.tx():
        store.conn.executemany(
            "INSERT INTO batches (job, submission_id, task_id, label, state, files, bytes, "
            "created, submitted, finished) VALUES (?, ?, ?, ?, 'succeeded', ?, ?, ?, ?, ?)",
            (
                (job, str(uuid.uuid4()), str(uuid.uuid4()), f"AUTO_tree_{i}", 50, 50 << 20,
                 at - 60, at - 50, at)
                for i in range(batches)
                for at in [now - span + span * i / batches]
            ),
        )  # fmt: skip
        store.conn.executemany(
            "INSERT INTO history (job, at, confirmed_files, confirmed_bytes, lag, free_bytes) "
            "VALUES (?, ?, ?, ?, ?, NULL)",
            ((job, now - span + k * history.INTERVAL, k * 50, k * (50 << 20), 30.0 + k % 7)
             for k in range(int(span / history.INTERVAL))),
        )  # fmt: skip
    store.cycles.record(job, now - 1, now, False, "ok", "bench")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--state", type=Path)
    parser.add_argument("--batches", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    state = args.state or work / "state"
    cfg_path = state.parent / "bench-web.toml"
    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        prepare(args.root, state, cfg_path, args.batches, args.days)
        cfg = config.load(cfg_path)
        app = App(lambda: cfg, state)
        store = Store.open_readonly(state)
        assert store is not None
        job_id = store.jobs.find("tree")
        assert job_id is not None
        c = store.jobs.counts(job_id)
        n_batches = store.conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
        n_hist = store.conn.execute("SELECT COUNT(*) FROM history").fetchone()[0]
        n_dirs = store.conn.execute("SELECT COUNT(*) FROM dirs").fetchone()[0]
        store.close()
        print(f"store: {c.done:,} confirmed files in {n_dirs:,} directories, {n_batches:,} "
              f"batches, {n_hist:,} history rows\n")  # fmt: skip
        print(f"{'answer':44} {'median ms':>10} {'bytes':>9}")

        def status_json() -> str:
            ro = Store.open_readonly(state)
            try:
                return json.dumps({"jobs": [report.job_status(ro, j) for j in cfg.jobs]},
                                  indent=2)  # fmt: skip
            finally:
                if ro is not None:
                    ro.close()

        ms = median_ms(status_json, args.repeat)
        print(f"{'status --json (in process)':44} {ms:10.1f} {len(status_json()):9,}")
        for path in PATHS:
            ms = median_ms(lambda p=path: app.handle(p), args.repeat)
            r = app.handle(path)
            assert r.status in (200, 503), (path, r.status)
            print(f"{path:44} {ms:10.1f} {len(r.body):9,}")
        env = {**os.environ, "GLOBUS_AUTOSYNC_CONFIG": str(cfg_path),
               "GLOBUS_AUTOSYNC_STATE_DIR": str(state)}  # fmt: skip

        def cli() -> None:
            subprocess.run([script(), "status", "--json"], env=env, check=True,
                           capture_output=True)  # fmt: skip

        ms = median_ms(cli, args.repeat)
        print(f"{'globus-autosync status --json (process)':44} {ms:10.1f}")
        quiet_cycle_cost(state, args.repeat)
        serving_cost(cfg, state, args.repeat)
    finally:
        if args.state is None:
            shutil.rmtree(work, ignore_errors=True)


def quiet_cycle_cost(state: Path, repeat: int) -> None:
    """record_run when the history has a young row (most cycles), and when it adds one (at most
    every 5 minutes): the difference is what the history costs a cycle."""
    store = Store.open(state)
    job = store.jobs.find("tree")
    assert job is not None
    now = time.time()
    plain = median_ms(lambda: store.cycles.record(job, now, now, False, "ok", "bench"), repeat)

    def with_row() -> None:
        store.conn.execute("DELETE FROM history WHERE job=? AND at > ?", (job, now - 3600))
        store.cycles.record(job, now, now, False, "ok", "bench")

    adding = median_ms(with_row, repeat)
    store.conn.execute("DELETE FROM history WHERE job=? AND at > ?", (job, now - 3600))
    store.close()
    print(f"\nrecord_run, history row not due: {plain:.2f} ms; adding a row: {adding:.2f} ms")


def serving_cost(cfg: config.Config, state: Path, repeat: int) -> None:
    """Quiet cycles (``run_job``, no change in the tree) back to back, in blocks that alternate
    between alone and while a thread of the same process (as in ``watch --http``) renders the
    page's fragment once a second (five times what one open page asks: it refreshes every 5 s);
    the total time of each kind, mean per cycle (a render lands on some cycles only)."""
    import threading

    from globus_autosync.engine.step import run_job

    job = cfg.jobs[0]
    app = App(lambda: cfg, state)
    busy = threading.Event()
    stop = threading.Event()

    def reader() -> None:
        while not stop.wait(1.0):
            if busy.is_set():
                app.handle("/?fragment=1")

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    totals = {False: 0.0, True: 0.0}
    count = {False: 0, True: 0}
    run_job(job, cfg, state)  # warm
    try:
        for block in range(2 * max(repeat, 5)):
            serving = block % 2 == 1
            busy.set() if serving else busy.clear()
            t = time.perf_counter()
            end = t + 3.0  # a block: 3 s of cycles
            while time.perf_counter() < end:
                run_job(job, cfg, state)
                count[serving] += 1
            totals[serving] += time.perf_counter() - t
    finally:
        stop.set()
        thread.join()
    alone, served = (totals[k] / count[k] * 1000 for k in (False, True))
    print(f"quiet cycle alone: {alone:.1f} ms ({count[False]} cycles); while the page is served "
          f"once a second: {served:.1f} ms ({count[True]} cycles, "
          f"{100 * (served - alone) / alone:+.1f} %)")  # fmt: skip


if __name__ == "__main__":
    main()

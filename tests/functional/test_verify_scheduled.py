"""The scheduled audit (``verify_every``): ``run`` and ``watch`` audit the destination on their
own, a slice after each cycle, resume after a kill -9, raise health and say what to do, and repair
only when ``verify_repair`` says so."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

from globus_autosync import config
from globus_autosync.sources.base import relpaths
from globus_autosync.store import Store
from globus_autosync.transports import make_transport
from globus_autosync.verify.dirs import audit_dir
from globus_autosync.verify.result import JobAudit

from .globus_env import Globus, populate
from .helpers import CliEnv, assert_mirrored, job_toml, wait_for


def _tree(env: CliEnv, dirs: int = 5, files: int = 3) -> list[str]:
    rels = [f"scan{d}/f{i}.tif" for d in range(dirs) for i in range(files)]
    for rel in rels:
        env.write(rel, os.urandom(50))
    return rels


def _audit(env: CliEnv) -> dict[str, Any]:
    audit: dict[str, Any] = env.status()["audit"]
    return audit


def _until_audited(env: CliEnv) -> None:
    """Runs until the scheduled audit under way is complete (a slice is at most a second: on a
    loaded machine a small tree may take more than one)."""
    for _ in range(20):
        env.run(code=None)
        audit = env.status()["audit"]
        if audit is not None and audit["finished"] and audit["in_progress"] is None:
            return
    raise AssertionError(f"the audit did not finish: {env.status()['audit']}")


def test_run_audits_on_its_own_and_says_what_the_destination_lost(env: CliEnv) -> None:
    env.configure(job_toml(verify_every="1s"))
    _tree(env)
    env.run()  # sends, then audits (nothing confirmed yet: an audit of nothing)
    env.run()
    assert _audit(env)["missing"] == 0 and _audit(env)["error"] is None
    (env.dst / "scan3" / "f1.tif").unlink()
    time.sleep(1.1)  # the audit is due again
    _until_audited(env)
    audit = _audit(env)
    assert (audit["confirmed"], audit["missing"], audit["in_progress"]) == (15, 1, None)
    assert any("audit: scan3/f1.tif: missing" in line for line in env.log_lines())
    check = env.cli("status", "--check", code=2).stdout
    assert "detector: FAILING: the destination no longer holds 1 of the files it had" in check
    assert "verify --repair --job detector" in check
    assert 'globus_autosync_destination_missing{autosync_job="detector"} 1.0' in env.metrics()
    assert (env.dst / "scan3" / "f1.tif").exists() is False  # not repaired unless asked
    # asked: the next audit queues it again, the cycle after sends it
    env.configure(job_toml(verify_every="1s", verify_repair=True))
    time.sleep(1.1)
    env.run()
    env.run()
    assert_mirrored(env.src, env.dst)
    assert env.cli("status", "--check").stdout.strip() == "detector: OK"


def test_a_scheduled_audit_killed_midway_resumes_where_it_stopped(env: CliEnv) -> None:
    env.configure(job_toml(verify_every="1h"))
    _tree(env)
    env.run()
    _until_audited(env)  # the first audit, complete
    with env.db() as db:  # make the next one due
        db.execute("UPDATE audits SET finished = finished - 7200")
        db.commit()
    crash = {**env.environ(), "GLOBUS_AUTOSYNC_CRASH_AT": "audit-dir-saved:1"}
    killed = env.cli("run", code=None, env=crash)  # killed once its first directory is saved
    assert killed.returncode == -9
    audit = _audit(env)
    assert audit["in_progress"]["directories"] == 1 and audit["in_progress"]["confirmed"] == 3
    # lost in a directory the audit has passed: not found by this audit (it resumes, it does
    # not start again); lost in one it has not reached: found
    with env.db() as db:
        [(passed,)] = db.execute(
            "SELECT d.name FROM audit_progress a JOIN dirs d ON d.id = a.after_dir"
        )
        [(ahead,)] = db.execute(
            "SELECT name FROM dirs WHERE id > (SELECT after_dir FROM audit_progress) "
            "ORDER BY id LIMIT 1"
        )
    (env.dst / passed / "f0.tif").unlink()
    (env.dst / ahead / "f0.tif").unlink()
    _until_audited(env)
    audit = _audit(env)
    assert audit["in_progress"] is None
    with env.db() as db:  # a new audit finished (the first one's time was moved 2 h back)
        assert db.execute("SELECT finished FROM audits").fetchone()[0] > time.time() - 600
    assert (audit["confirmed"], audit["missing"]) == (15, 1)  # each file counted once


def test_a_file_confirmed_while_its_directory_is_audited_is_not_missing(env: CliEnv) -> None:
    """The confirmed listing is read before the destination's: a file a cycle confirms in
    between is audited next time, never reported missing."""
    _tree(env, dirs=1, files=2)
    env.run()
    cfg = config.load(env.config)
    [job] = cfg.jobs
    store = Store.open(env.state)
    real = make_transport(job, cfg, env.state)
    try:
        job_id = store.jobs.find("detector")
        assert job_id is not None
        rel = relpaths(store, job_id)
        [dir_id] = [d for d, r in rel.items() if r == "scan0"]

        class ConfirmsMeanwhile:
            def held(self, reldir: str) -> Any:
                listed = real.held(reldir)
                (env.dst / "scan0" / "new.tif").write_bytes(b"new")  # a cycle confirms one
                st = os.stat(env.dst / "scan0" / "new.tif")
                with store.conn:
                    store.dirs.add_confirmed(dir_id, {"new.tif": (3, st.st_mtime_ns)})
                return listed

        result = JobAudit("detector")
        assert audit_dir(job, store, job_id, ConfirmsMeanwhile(), dir_id, "scan0", result, False)
        assert (result.confirmed, result.missing) == (2, 0)
    finally:
        real.close()
        store.close()


def test_watch_audits_while_files_keep_arriving_and_sends_them_as_fast(
    env: CliEnv, watcher: Callable[..., subprocess.Popen[str]]
) -> None:
    env.configure(job_toml(verify_every="1s", interval="0.2s", batch_window="0s"))
    _tree(env, dirs=30, files=5)
    watcher()
    wait_for("the tree", lambda: env.status()["done"] == 150)
    waits = []
    for i in range(10):  # files keep arriving while audits run, a slice between cycles
        env.write(f"live/f{i}.tif", b"x" * 10)
        written = time.monotonic()
        arrived = env.dst / "live" / f"f{i}.tif"
        wait_for(str(arrived), arrived.exists)
        waits.append(time.monotonic() - written)
    audits = [x for x in env.log_lines() if "audit of the destination: " in x]
    assert len(audits) >= 2, audits  # audits went on meanwhile
    assert all("0 missing" in x for x in audits)
    # sending never waited for an audit longer than a slice (1 s) on top of a cycle or two
    assert max(waits) < 5, waits


def test_a_globus_destination_is_audited_on_schedule_one_listing_a_directory(gx: Globus) -> None:
    files = populate(gx)
    gx.configure(verify_every="1s")
    gx.send()
    (gx.dst / "run_Sep2018" / "notes.txt").unlink()
    time.sleep(1.1)
    before = len(gx.emu.requests)
    for _ in range(10):  # a cycle and a slice a run, until the audit is complete
        gx.run(code=None)
        audit = gx.status()["audit"]
        if audit["in_progress"] is None and audit["missing"]:
            break
    assert (audit["confirmed"], audit["missing"]) == (len(files), 1)
    check = gx.cli("status", "--check", code=2).stdout
    assert "no longer holds 1 of the files it had confirmed" in check
    # one paged listing a directory with confirmed files, never more (at requests_per_second)
    listings = [p for (m, p, _) in gx.emu.requests[before:] if p.endswith("/ls")]
    dirs = {os.path.dirname(rel) for rel in files}
    assert len(listings) == len(dirs), listings

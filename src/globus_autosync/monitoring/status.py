"""What ``status`` and ``tasks`` show: plain data, rendered as text or JSON by the CLI."""

from __future__ import annotations

import time
from typing import Any

from globus_autosync.cleanup.deleter import free_space
from globus_autosync.config import Job
from globus_autosync.monitoring import health
from globus_autosync.sources.base import join, relpaths
from globus_autosync.store import Store
from globus_autosync.store.names import escape


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts))


def job_status(store: Store | None, job: Job) -> dict[str, Any]:
    """One job's health, counts, bytes, last run and lag (age of the oldest settled file not
    done)."""
    row = _counts(store, job)
    row["health"] = health.assess(store, job).as_dict()
    row["collections"] = [
        {"role": c.role, "collection": c.collection, "name": c.name, "problem": c.problem}
        for c in (store.health.collections(job.name) if store is not None else [])
    ]
    return row


def _counts(store: Store | None, job: Job) -> dict[str, Any]:
    job_id = store.jobs.find(job.name) if store else None
    if store is None or job_id is None:
        return {
            "job": job.name,
            "done": 0,
            "waiting": 0,
            "queued": 0,
            "in_flight": 0,
            "failed": 0,
            "skipped": 0,
            "bytes_done": 0,
            "confirmed_total": 0,
            "confirmed_bytes_total": 0,
            "audit": None,
            "last_run": None,
            "last_result": None,
            "last_summary": None,
            "lag_seconds": 0.0,
            "problems": [],
            "tasks_waiting": [],
            "cleanup": _cleanup(None, None, job),
            "actions": job_actions_status(None, job),
        }
    c = store.jobs.counts(job_id)
    life = store.jobs.life(job_id)
    lag = max(0.0, time.time() - c.oldest_settled) if c.oldest_settled is not None else 0.0
    rel = relpaths(store, job_id)
    # directories the latest walk could not list, then failed and skipped files
    problems = [
        {"path": u.path, "state": "unlistable", "reason": u.reason, "attempts": u.cycles}
        for u in store.unlistable.current(job_id)
    ]
    problems += [
        {
            "path": escape(join(rel.get(d, "?"), p.name)),
            "state": "unsendable" if p.reason in health.UNSENDABLE else p.state,
            "reason": p.reason,
            "attempts": p.attempts,
        }
        for d, p in store.files.failures(job_id)
    ]
    # tasks in flight that wait for someone (an INACTIVE task: expired credentials)
    waiting = [
        {"batch": b.id, "task_id": b.task_id, "reason": b.reason, "url": task_url(job, b.task_id)}
        for b in store.batches.unresolved(job_id)
        if b.reason
    ]
    return {
        "job": job.name,
        "done": c.done,
        "waiting": c.seen,
        "queued": c.queued,
        "in_flight": c.submitted,
        "failed": c.failed,
        "skipped": c.skipped,
        "bytes_done": c.done_bytes,
        # over the job's life: never less later, whatever cleanup deletes from the source
        "confirmed_total": life[0],
        "confirmed_bytes_total": life[1],
        "audit": _audit(store, job_id),
        "last_run": _iso(c.last_run[0]) if c.last_run else None,
        "last_result": c.last_run[1] if c.last_run else None,
        "last_summary": c.last_run[2] if c.last_run else None,
        "lag_seconds": round(lag, 1),
        "problems": problems,
        "tasks_waiting": waiting,
        "cleanup": _cleanup(store, job_id, job, rel),
        "actions": job_actions_status(store, job),
    }


def _audit(store: Store, job_id: int) -> dict[str, Any] | None:
    """The latest audit of the job's destination (``verify``), and the scheduled one under way
    (``verify_every``), or None."""
    a, now = store.audits.latest(job_id), store.audits.progress(job_id)
    if a is None and now is None:
        return None
    out: dict[str, Any] = {
        "finished": None,
        "confirmed": 0,
        "missing": 0,
        "different": 0,
        "error": None,
        "in_progress": None,
    }
    if a is not None:
        out.update(
            finished=_iso(a.finished),
            confirmed=a.confirmed,
            missing=a.missing,
            different=a.different,
            error=a.error,
        )
    if now is not None:
        out["in_progress"] = {
            "started": _iso(now.started),
            "directories": now.dirs,
            "confirmed": now.confirmed,
            "missing": now.missing,
            "different": now.different,
        }
    return out


def _cleanup(
    store: Store | None, job_id: int | None, job: Job, rel: dict[int, str] | None = None
) -> dict[str, Any] | None:
    """Source cleanup of a job: what it deleted, what waits, the source's free space; None for
    a job without cleanup that never deleted anything."""
    totals = store.cleanup.totals(job_id) if store is not None and job_id is not None else None
    if not job.cleanup.enabled and (totals is None or not totals.files):
        return None
    try:
        free, total = free_space(job.source)
    except OSError:
        free, total = None, None
    failures = []
    if store is not None and job_id is not None and totals is not None and totals.failing:
        failures = [
            {"path": escape(join((rel or {}).get(d, "?"), name)), "reason": reason}
            for d, name, reason in store.cleanup.failures(job_id)
        ]
    return {
        "on": job.cleanup.enabled,
        "deleted_files": totals.files if totals else 0,
        "deleted_bytes": totals.bytes if totals else 0,
        "last_deleted": _iso(totals.last) if totals else None,
        "waiting": totals.waiting if totals else 0,
        "failing": failures,
        "source_free_bytes": free,
        "source_total_bytes": total,
        "keep_free_bytes": job.cleanup.keep_free.bytes_of(total)
        if job.cleanup.keep_free and total
        else None,
    }


def job_tasks(store: Store | None, job: Job, limit: int) -> list[dict[str, Any]]:
    job_id = store.jobs.find(job.name) if store else None
    if store is None or job_id is None:
        return []
    return [
        {
            "job": job.name,
            "batch": b.id,
            "task_id": b.task_id,
            "label": b.label,
            "state": b.state,
            "files": b.files,
            "bytes": b.bytes,
            "submitted": _iso(b.submitted),
            "finished": _iso(b.finished),
            "reason": b.reason,
            "url": task_url(job, b.task_id),
        }
        for b in store.batches.recent(job_id, limit)
    ]


def task_url(job: Job, task_id: str | None) -> str | None:
    """Where a person can see a task: the Globus web app's activity page."""
    if job.transport == "globus" and task_id:
        return f"https://app.globus.org/activity/{task_id}"
    return None


def job_actions_status(store: Store | None, job: Job) -> dict[str, Any] | None:
    """A job's actions for ``status``: counts by state, the datasets that wait for files, and
    the actions that failed or wait for someone; None for a job that never had any."""
    job_id = store.jobs.find(job.name) if store else None
    counts = store.actions.counts(job_id) if store is not None and job_id is not None else {}
    if not job.actions.on_done and not counts:
        return None
    out: dict[str, Any] = {
        state: counts.get(state, 0)
        for state in ("collecting", "pending", "running", "succeeded", "failed")
    }
    out.update(datasets_waiting=[], failed_actions=[], waiting_for_you=[])
    if store is None or job_id is None:
        return out
    for row in store.actions.collecting(job_id):
        blockers = store.actions.dataset_blockers(row.dir) if row.dir is not None else []
        if blockers:
            out["datasets_waiting"].append(
                {
                    "action": row.id,
                    "dataset": escape(row.dataset or ""),
                    "files": [
                        {"path": escape(join(row.dataset or "", n)), "state": s}
                        for n, s in blockers
                    ],
                }
            )
    for row in store.actions.recent(job_id, 1000):
        if row.state == "failed" and len(out["failed_actions"]) < 20:
            out["failed_actions"].append({"action": row.id, "reason": row.reason})
        elif row.state in ("pending", "running") and row.reason:
            out["waiting_for_you"].append({"action": row.id, "reason": row.reason})
    return out


def job_actions(store: Store | None, job: Job, limit: int) -> list[dict[str, Any]]:
    """Recent actions for ``tasks``: the flow run (and its web link) and the command's exit."""
    job_id = store.jobs.find(job.name) if store else None
    if store is None or job_id is None:
        return []
    return [
        {
            "job": job.name,
            "action": r.id,
            "label": f"AUTO_{job.name}_{r.kind}_{r.id}",
            "kind": r.kind,
            "batch": r.batch,
            "dataset": escape(r.dataset) if r.dataset is not None else None,
            "part": r.part,
            "parts": r.parts,
            "state": r.state,
            "files": r.files,
            "bytes": r.bytes,
            "attempt": r.attempt,
            "flow_state": r.flow_state,
            "run_id": r.run_id,
            "url": f"https://app.globus.org/runs/{r.run_id}" if r.run_id else None,
            "command_state": r.cmd_state,
            "exit_code": r.exit_code,
            "started": _iso(r.started),
            "finished": _iso(r.finished),
            "reason": r.reason,
        }
        for r in store.actions.recent(job_id, limit)
    ]

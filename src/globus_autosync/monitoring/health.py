"""A job's health, computed from the store: ``ok``, ``lagging``, ``waiting``, ``failing`` or
``stopped``, with the one reason that matters most and what to do about it."""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from globus_autosync.config import Job
from globus_autosync.monitoring.hang import hung
from globus_autosync.monitoring.refused import refused_batch
from globus_autosync.sources.base import UNSENDABLE_NEWLINE, UNSENDABLE_UTF8
from globus_autosync.store import Store
from globus_autosync.store import health as db

OK, LAGGING, WAITING, FAILING, STOPPED = "ok", "lagging", "waiting", "failing", "stopped"
UNSENDABLE = (UNSENDABLE_UTF8, UNSENDABLE_NEWLINE)  # a name the transport cannot carry
STATES = (OK, LAGGING, WAITING, FAILING, STOPPED)
# `status --check` exit codes: 0 all ok, 1 any lagging or waiting, 2 any failing or stopped
SEVERITY = {OK: 0, LAGGING: 1, WAITING: 1, FAILING: 2, STOPPED: 2}

# run results (the ``runs`` table): a cycle that could not run, one that stopped on a login or
# consent, one that could not reach the transport and left its work queued
RESULT_ERROR, RESULT_WAITING, RESULT_UNAVAILABLE = "error", "waiting", "unavailable"
RESULT_UNMOUNTED = "unmounted"  # a root not on the file system it was on (engine/mounts.py)

_RUN_IT = (
    "start the service ('systemctl --user start globus-autosync', see 'globus-autosync service "
    "systemd') or check the crontab line ('globus-autosync service cron')"
)


class Health(NamedTuple):
    state: str
    reason: str
    action: str
    key: str  # the condition, for alerts: the same key is the same condition

    def line(self) -> str:
        if self.state == OK:
            return OK if not self.reason else f"ok: {self.reason}"
        return f"{self.state}: {self.reason}; {self.action}"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self._asdict().items() if k != "key"}


def age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def assess(store: Store | None, job: Job, now: float | None = None) -> Health:
    """The health of one job, from what the store holds (None: no database yet).

    - ``failing``: the cycle in hand has made no progress for ``hang_after`` (hang.py: a
      share or a service that does not answer), or the last ``alert_after`` cycles could not
      run (or could not reach the transport), or files have failed ``alert_after`` times and
      keep failing, or the service refused the latest batch for good, or a source directory
      could not be listed ``alert_after`` walks in a row;
    - ``stopped``: no cycle ran to its end for ``alert_lag`` (counted from the job's first
      cycle when none ever did), or the job never ran: nothing runs it;
    - ``waiting``: someone must act: a login or consent (the last cycle said so), a task
      INACTIVE, paused by an administrator or failing with an error that does not clear (a
      full destination), a collection not connected (Globus Connect Personal not running, or
      paused), a source directory that cannot be listed or a file that failed (``failing``
      once the directory has been unlistable ``alert_after`` walks in a row);
    - ``lagging``: the oldest file that settled has waited more than ``alert_lag``.

    When several hold, the first of that list wins, except that a cycle which stopped on a
    login or a consent is ``waiting`` however long ago the last good cycle was (the reason then
    says what to do).
    """
    now = time.time() if now is None else now
    job_id = store.jobs.find(job.name) if store is not None else None
    if store is None or job_id is None:
        return Health(STOPPED, "it has never run", _RUN_IT, "stopped:never")
    hang = hung(store, job, job_id, now)
    if hang is not None:  # what the job does now comes before what its last cycles did
        return Health(FAILING, hang.reason, hang.action, "failing:hung")
    runs = store.cycles.recent(job_id, job.alert_after)
    if not runs:
        return Health(STOPPED, "it has never run", _RUN_IT, "stopped:never")
    last = runs[0]
    if last.result == RESULT_UNMOUNTED:
        return Health(
            FAILING,
            last.summary,
            "mount it, or accept a move made on purpose ('globus-autosync check "
            "--accept-device'); the next cycle carries on by itself",
            "failing:unmounted",
        )
    bad = (RESULT_ERROR, RESULT_UNAVAILABLE, RESULT_UNMOUNTED)
    if len(runs) >= job.alert_after and all(r.result in bad for r in runs):
        return Health(
            FAILING,
            f"the last {len(runs)} cycles could not run: {last.summary}",
            "fix what the message says; the next cycle carries on by itself",
            "failing:cycles",
        )
    many, example = store.health.stubborn_failures(job_id, job.alert_after)
    if many:
        times = "once" if job.alert_after == 1 else f"{job.alert_after} times"
        return Health(
            FAILING,
            f"{many} file{'s' if many > 1 else ''} failed {times} or more (latest {example})",
            "fix the cause ('globus-autosync status' lists them); they are retried by themselves",
            "failing:files",
        )
    refused = refused_batch(store, job_id)
    if refused is not None:
        return Health(
            FAILING,
            refused,
            "fix what the service says (a job name, a path the destination refuses: rename or "
            "exclude it); its files are tried again by themselves",
            "failing:refused",
        )
    lost = store.lost.current(job_id, 1)
    if lost:
        gone = store.lost.count(job_id)
        return Health(
            FAILING,
            f"the destination lost {gone} file{'s' if gone > 1 else ''} it had confirmed, and "
            f"the source{'s are' if gone > 1 else ' is'} gone too (latest {lost[0].path}: "
            f"{lost[0].reason})",
            "recover them from a backup if you can ('globus-autosync verify' lists them), then "
            "'globus-autosync verify --forget-lost --job NAME'",
            "failing:lost",
        )
    audit = store.audits.latest(job_id)
    if audit is not None and audit.error is None and (audit.missing or audit.different):
        return Health(
            FAILING,
            f"the destination no longer holds {audit.missing + audit.different} of the files it "
            f"had confirmed ({audit.missing} missing, {audit.different} different; audit of "
            f"{_when(audit.finished)})",
            f"'globus-autosync verify --repair --job {job.name}' sends again what the source "
            "still has (or set verify_repair = true)",
            "failing:audit",
        )
    unlistable = store.unlistable.current(job_id, 1)
    if unlistable and unlistable[0].cycles >= job.alert_after:
        return Health(FAILING, _unlistable(store, job_id), _UNLISTABLE_DO, "failing:unlistable")
    if last.result == RESULT_WAITING:
        return Health(
            WAITING, last.summary, "do what it says; the next cycle carries on", "waiting:login"
        )
    good = store.cycles.last_good(job_id)
    # no good cycle for alert_lag: since the last good one, or since the job's first cycle
    since_good = now - (good if good is not None else store.cycles.first(job_id) or now)
    if since_good > job.alert_lag:
        since = f"since {_when(good)} ({age(now - good)})" if good else "yet"
        reason = f"no cycle has run to its end {since}"
        if last.result != "ok" and now - last.finished <= job.alert_lag:
            reason += f"; the last one: {last.summary}"
        return Health(STOPPED, reason, _RUN_IT, "stopped:cycles")
    down = [c for c in store.health.collections(job.name) if c.problem]
    if down:
        return Health(
            WAITING,
            f"{down[0].label} {down[0].problem}",
            collection_action(down[0]),
            f"waiting:collection:{down[0].role}",
        )
    stuck = [b for b in store.batches.unresolved(job_id) if b.reason]
    if stuck:
        return Health(
            WAITING,
            stuck[0].reason or "",
            "do what it says ('globus-autosync tasks' shows the batch); the task goes on by itself",
            "waiting:task",
        )
    if unlistable:
        return Health(WAITING, _unlistable(store, job_id), _UNLISTABLE_DO, "waiting:unlistable")
    if audit is not None and audit.error is not None:
        return Health(
            WAITING,
            f"the destination could not be audited ({_when(audit.finished)}): {audit.error}",
            "make the destination listable; a scheduled audit is tried again within the hour, "
            "or run 'globus-autosync verify'",
            "waiting:audit",
        )
    names, example = store.health.skipped_for(job_id, UNSENDABLE)
    if names:
        return Health(
            WAITING,
            f"{names} file name{'s' if names > 1 else ''} cannot be sent (latest {example})",
            "rename them, or add them to the job's 'exclude'; they go by themselves once renamed",
            "waiting:unsendable",
        )
    n = store.jobs.counts(job_id)
    if n.failed:
        example = store.health.stubborn_failures(job_id, 1)[1]
        return Health(
            WAITING,
            f"{n.failed} file{'s' if n.failed > 1 else ''} failed (latest {example})",
            "fix the cause ('globus-autosync status' lists them); they are retried by themselves",
            "waiting:files",
        )
    lag = max(0.0, now - n.oldest_settled) if n.oldest_settled is not None else 0.0
    if lag > job.alert_lag:
        return Health(
            LAGGING,
            f"the oldest file ready to send has waited {age(lag)} "
            f"(alert_lag {age(job.alert_lag)}); "
            f"{n.queued} queued, {n.submitted} in flight, {n.failed} failed",
            "look at 'globus-autosync tasks' for a slow or stuck task, and at the destination",
            "lagging",
        )
    return Health(OK, "", "", OK)


_UNLISTABLE_DO = (
    "let the user that runs globus-autosync read it, or add it to the job's 'exclude'; it is "
    "listed again by itself"
)


def _unlistable(store: Store, job_id: int) -> str:
    first = store.unlistable.current(job_id, 1)[0]
    n = store.unlistable.count(job_id)
    what = "a source directory" if n == 1 else f"{n} source directories"
    times = "once" if first.cycles == 1 else f"{first.cycles} walks in a row"
    return f"{what} could not be listed, {times} (e.g. {first.path}: {first.reason})"


def collection_action(c: db.CollectionRow) -> str:
    name, problem = c.name or c.collection, c.problem or ""
    if "paused" in problem:  # its document says so, or a task shows GC_PAUSED
        return f"resume Globus Connect Personal on {name}"
    if c.gcp or "GC_NOT_CONNECTED" in problem:
        return f"start Globus Connect Personal on {name}"
    return f"check that collection {name} is up (https://app.globus.org/file-manager/collections)"


def worst(states: list[str]) -> int:
    """The exit code of ``status --check``."""
    return max((SEVERITY[s] for s in states), default=0)

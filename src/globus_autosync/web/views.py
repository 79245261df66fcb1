"""What the page shows, as plain data for the templates: a card per job (the ``status --json``
row, today's confirmed files, the pictures) and a job's own page (``tasks --json`` rows and the
rest of its row). Everything comes from the read-only store; nothing here writes."""

from __future__ import annotations

import time
from typing import Any

from globus_autosync.cleanup import audit
from globus_autosync.config import Config, Job
from globus_autosync.monitoring import health
from globus_autosync.monitoring import status as report
from globus_autosync.store import Store
from globus_autosync.web import charts

HOUR, DAY = 3600.0, 86400.0
# what each health says in colour (CSS classes) and in a word people read at a glance
HEADLINE = {
    health.OK: "OK: data is moving",
    health.LAGGING: "Lagging: files wait longer than they should",
    health.WAITING: "Waiting: someone must act",
    health.FAILING: "Failing: cycles or files fail",
    health.STOPPED: "Stopped: nothing runs this job",
}


def human_bytes(n: float | None) -> str:
    """Bytes in words (as `status` writes them)."""
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _count(n: float) -> str:
    return f"{n:,.0f}"


def _midnight(now: float) -> float:
    t = time.localtime(now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def status_rows(store: Store | None, cfg: Config) -> list[dict[str, Any]]:
    """The document of ``status --json``: its ``jobs``."""
    return [report.job_status(store, job) for job in cfg.jobs]


def check_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The lines of ``status --check`` (cli/health.py writes them the same way)."""
    lines = []
    for r in rows:
        h = r["health"]
        line = f"{r['job']}: {h['state'].upper()}"
        if h["state"] != health.OK:
            line += f": {h['reason']}; {h['action']}"
        lines.append(line)
    return lines


def card(store: Store | None, job: Job, row: dict[str, Any], now: float) -> dict[str, Any]:
    """One job's card: its status row, the headline of its health, today's totals, pictures."""
    job_id = store.jobs.find(job.name) if store is not None else None
    today = (0, 0)
    pictures: list[charts.Chart] = []
    if store is not None and job_id is not None:
        today = store.history.confirmed(job_id, _midnight(now), 2 * DAY).get(0, (0, 0))
        pictures = _pictures(store, job_id, job, now)
    return {
        "row": row,
        "job": job,
        "state": row["health"]["state"],
        "headline": HEADLINE.get(row["health"]["state"], row["health"]["state"]),
        "today_files": today[0],
        "today_bytes": today[1],
        "lag": health.age(row["lag_seconds"]),
        "charts": pictures,
    }


def _pictures(store: Store, job_id: int, job: Job, now: float) -> list[charts.Chart]:
    hour0 = (now // HOUR) * HOUR - 23 * HOUR
    by_hour = store.history.confirmed(job_id, hour0, HOUR)
    day0 = _midnight(now - 6 * DAY)
    by_day = store.history.confirmed(job_id, day0, DAY)

    def hour_tip(i: int) -> str:
        f, b = by_hour.get(i, (0, 0))
        return f"{time.strftime('%H:00', time.localtime(hour0 + i * HOUR))}: {f} files, " + (
            human_bytes(b)
        )

    def day_tip(i: int) -> str:
        f, b = by_day.get(i, (0, 0))
        when = time.strftime("%a %d %b", time.localtime(day0 + i * DAY + HOUR * 12))
        return f"{when}: {f} files, {human_bytes(b)}"

    out = [
        charts.bars(
            "files confirmed per hour, last 24 h",
            [by_hour.get(i, (0, 0))[0] for i in range(24)],
            [hour_tip(i) for i in range(24)],
            _count,
            "24 h ago",
            "now",
        ),
        charts.bars(
            "bytes confirmed per hour, last 24 h",
            [by_hour.get(i, (0, 0))[1] for i in range(24)],
            [hour_tip(i) for i in range(24)],
            human_bytes,
            "24 h ago",
            "now",
        ),
        charts.bars(
            "files confirmed per day, last 7 days",
            [by_day.get(i, (0, 0))[0] for i in range(7)],
            [day_tip(i) for i in range(7)],
            _count,
            time.strftime("%a %d", time.localtime(day0 + 12 * HOUR)),
            "today",
        ),
    ]
    week = store.history.rows(job_id, now - 7 * DAY)
    lag_week = [(r.at, r.lag) for r in week]
    lag_day = [(at, v) for at, v in lag_week if at >= now - DAY]

    def hhmm(at: float) -> str:
        return time.strftime("%a %H:%M", time.localtime(at))

    out.append(
        charts.line(
            "lag, last 24 h",
            charts.thin(lag_day, now - DAY, now, 288),
            now - DAY,
            now,
            health.age,
            hhmm,
            "24 h ago",
            "now",
        )
    )
    out.append(
        charts.line(
            "lag, last 7 days",
            charts.thin(lag_week, now - 7 * DAY, now, 336),
            now - 7 * DAY,
            now,
            health.age,
            hhmm,
            "7 days ago",
            "now",
        )
    )
    if job.cleanup.enabled:
        free = [(r.at, float(r.free_bytes)) for r in week if r.free_bytes is not None]
        out.append(
            charts.line(
                "source free space, last 7 days",
                charts.thin(free, now - 7 * DAY, now, 336),
                now - 7 * DAY,
                now,
                human_bytes,
                hhmm,
                "7 days ago",
                "now",
            )
        )
    return out


def cards(store: Store | None, cfg: Config, now: float | None = None) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    return [card(store, job, report.job_status(store, job), now) for job in cfg.jobs]


def job_page(store: Store | None, job: Job, limit: int = 50) -> dict[str, Any]:
    """A job's own page: its card, latest batches and actions, failed and skipped files,
    collections not connected, cleanup."""
    now = time.time()
    row = report.job_status(store, job)
    return {
        **card(store, job, row, now),
        "batches": report.job_tasks(store, job, limit),
        "actions": report.job_actions(store, job, limit),
        "down": [c for c in row["collections"] if c["problem"]],
        "deletions": audit.latest(store.path.parent, job.name) if store is not None else [],
    }

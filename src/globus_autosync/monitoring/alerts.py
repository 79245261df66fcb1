"""Alerts: a short message to a webhook and/or by e-mail when a job's health leaves ``ok``, and
again when it returns to ``ok``. What was said last lives in the store (table ``alerts``), so a
condition is announced once across cron runs and ``watch``, repeated every ``repeat_every``; an
undelivered message is tried again later, and delivery never stops a sync cycle."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from globus_autosync import __version__
from globus_autosync.config import AlertSettings, Config, Job
from globus_autosync.errors import AutosyncError
from globus_autosync.monitoring import health
from globus_autosync.store import Store
from globus_autosync.store import health as db

log = logging.getLogger(__name__)

PASSWORD_ENV = "GLOBUS_AUTOSYNC_SMTP_PASSWORD"
WEBHOOK_TIMEOUT = 5.0
SMTP_TIMEOUT = 10.0
RETRY_FIRST, RETRY_MAX = 60.0, 3600.0


class Delivery(NamedTuple):
    channel: str  # webhook, email
    target: str  # the webhook's host (its path may hold a token), or the addresses
    ok: bool
    detail: str = ""


def channels(settings: AlertSettings) -> list[str]:
    return (["webhook"] if settings.webhook else []) + (["email"] if settings.email else [])


def target(settings: AlertSettings, channel: str) -> str:
    if channel == "webhook":
        parts = urlsplit(settings.webhook or "")
        return parts.hostname or "?" if parts.port is None else f"{parts.hostname}:{parts.port}"
    return ", ".join(settings.email)


def send(settings: AlertSettings, channel: str, subject: str, text: str) -> Delivery:
    """Deliver one message through one channel; never raises."""
    where = target(settings, channel)
    try:
        if channel == "webhook":
            _webhook(settings.webhook or "", text)
        else:
            _email(settings, subject, text)
    except Exception as err:  # a channel's failure is reported, whatever it is
        return Delivery(channel, where, False, _describe(err))
    return Delivery(channel, where, True, "delivered")


def _describe(err: Exception) -> str:
    # here: urllib.error costs 12 ms to import; only a failed delivery needs it
    import urllib.error

    if isinstance(err, urllib.error.HTTPError):
        return f"the webhook answered HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"cannot reach the webhook: {err.reason}"
    if isinstance(err, TimeoutError):
        return "no answer in time"
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else 'no message'}"


def _webhook(url: str, text: str) -> None:
    # here: urllib.request costs 31 ms and json 9 ms to import; a run with [alerts] and nothing
    # to say sends nothing
    import json
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps({"text": text}).encode("utf-8"),
        headers={
            "Content-Type": "application/json",
            "User-Agent": f"globus-autosync/{__version__}",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as reply:
        reply.read()


def _email(settings: AlertSettings, subject: str, text: str) -> None:
    # here: smtplib costs 25 ms, ssl 13 ms and email 17 ms to import; most runs send nothing
    import smtplib
    import ssl
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    password = os.environ.get(PASSWORD_ENV)
    if settings.smtp_user and not password:
        raise AutosyncError(
            f"smtp_user is set but {PASSWORD_ENV} is not; set it in the service's environment"
        )
    host = settings.smtp_host or "localhost"
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.sender or f"globus-autosync@{_host()}"  # no getfqdn: a DNS wait
    msg["To"] = ", ".join(settings.email)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid("globus-autosync")
    msg.set_content(text + "\n")
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.smtp_port == 465:
        smtp = smtplib.SMTP_SSL(host, settings.smtp_port, timeout=SMTP_TIMEOUT, context=context)
    else:
        smtp = smtplib.SMTP(host, settings.smtp_port, timeout=SMTP_TIMEOUT)
    with smtp:
        if settings.smtp_starttls and settings.smtp_port != 465:
            smtp.starttls(context=context)
        if settings.smtp_user and password:
            smtp.login(settings.smtp_user, password)
        smtp.send_message(msg)


# -- when to say what ---------------------------------------------------------------------------
def _host() -> str:
    # here: socket costs 12 ms to import; only a message names the host
    import socket

    return socket.gethostname()


def message(h: health.Health, job: str, previous: str, reminder: bool) -> dict[str, Any]:
    host = _host()
    if h.state == health.OK:
        was = previous.split(":", 1)[0]
        subject = f"globus-autosync on {host}: {job} is ok again"
        text = f"globus-autosync on {host}: job {job} is ok again (it was {was})."
    else:
        still = "still " if reminder else ""
        subject = f"globus-autosync on {host}: {job} is {still}{h.state}"
        text = (
            f"globus-autosync on {host}: job {job} is {still}{h.state}: {h.reason.rstrip('.')}. "
            f"What to do: {h.action}."
        )
    return {"key": h.key, "subject": subject, "text": text}


def _due(settings: AlertSettings, row: db.AlertRow, h: health.Health, now: float) -> bool | None:
    """None: nothing to say; False: a new condition; True: a reminder of the same one."""
    if h.key == row.announced:
        if h.key != health.OK and now - row.announced_at >= settings.repeat_every:
            return True
        return None
    said = row.history.get(h.key)
    if said is not None and now - said < settings.repeat_every:
        return None  # announced a moment ago and gone since: wait, it may go again
    return False


def after_cycles(
    config: Config, store: Store, jobs: Iterable[Job], now: float | None = None
) -> None:
    """Say what changed in these jobs' health. Never raises: alerts never stop a sync.

    A condition (a health and the kind of its reason) is announced once; while it lasts, it is
    repeated every ``repeat_every``, and one that comes back within ``repeat_every`` of being
    announced is not announced again before then (a flapping lag does not flood anyone). A
    message that could not be delivered is tried again after a minute, doubling, at most an hour.
    """
    if not config.alerts.enabled:
        return
    for job in jobs:
        try:
            _one(config.alerts, store, job, time.time() if now is None else now)
        except (AutosyncError, sqlite3.Error) as err:
            log.warning("%s: alert state not read or recorded: %s", job.name, err)


def _quiet(
    settings: AlertSettings, row: db.AlertBrief | None, h: health.Health, now: float
) -> bool:
    """Nothing to say and nothing owed: the common case, decided without a write."""
    if row is None or h.key != row.announced:
        return False
    reminder = h.key != health.OK and now - row.announced_at >= settings.repeat_every
    return not reminder and (not row.pending or now < row.next_try)


def _one(settings: AlertSettings, store: Store, job: Job, now: float) -> None:
    h = health.assess(store, job, now)
    if _quiet(settings, store.health.alert_brief(job.name), h, now):
        return
    with store.tx():  # claim the message, so that two processes do not both send it
        row = store.health.alert_row(job.name)
        new = row is None
        row = row or db.AlertRow(job.name)
        reminder = _due(settings, row, h, now)
        if reminder is not None:
            pending = message(h, job.name, row.announced, reminder)
            pending["channels"] = channels(settings)
            history = {**row.history, h.key: now}
            row = replace(
                row, pending=pending, announced=h.key, announced_at=now, attempts=0, history=history
            )
        elif row.pending is None or now < row.next_try:
            if new:
                store.health.save_alert_row(row)
            return
        assert row.pending is not None
        owed = row.pending
        next_try = now + min(RETRY_MAX, RETRY_FIRST * 2**row.attempts)
        row = replace(row, next_try=next_try, attempts=row.attempts + 1)
        store.health.save_alert_row(row)
    failed = []
    for channel in owed["channels"]:
        d = send(settings, channel, owed["subject"], owed["text"])
        if d.ok:
            log.info("%s: alert sent by %s to %s: %s", job.name, channel, d.target, owed["subject"])
        else:
            failed.append(channel)
            log.warning(
                "%s: alert not delivered by %s to %s: %s; tried again in %s",
                job.name,
                channel,
                d.target,
                d.detail,
                health.age(row.next_try - now),
            )
    with store.tx():
        current = store.health.alert_row(job.name)
        if current is None or current.pending is None or current.pending["text"] != owed["text"]:
            return  # replaced meanwhile by a newer message
        still = {**owed, "channels": failed} if failed else None
        current = replace(current, pending=still, attempts=current.attempts if failed else 0)
        store.health.save_alert_row(current)


def sample_message() -> tuple[str, str]:
    host = _host()
    subject = f"globus-autosync on {host}: test alert"
    text = (
        f"globus-autosync on {host}: a test alert (globus-autosync alert-test). Messages about "
        "the health of its jobs come here."
    )
    return subject, text

"""When an alert is due (pure decision, alerts._due): once per condition, again on recovery,
a reminder every repeat_every, and a condition that flaps is not announced again within
repeat_every of its last announcement."""

from __future__ import annotations

from dataclasses import replace

from globus_autosync.config import AlertSettings
from globus_autosync.monitoring import alerts
from globus_autosync.monitoring.health import FAILING, LAGGING, OK, Health
from globus_autosync.store.health import AlertRow

SIX_HOURS = 6 * 3600.0
SETTINGS = AlertSettings(webhook="https://hooks.example.org/x")
LAG = Health(LAGGING, "the oldest file has waited 2 h", "look at the tasks", "lagging")
FAIL = Health(FAILING, "the last 3 cycles could not run", "fix it", "failing:cycles")
FINE = Health(OK, "", "", OK)


def announce(row: AlertRow, h: Health, now: float) -> AlertRow:
    """What _one records when it sends."""
    return replace(row, announced=h.key, announced_at=now, history={**row.history, h.key: now})


def test_once_per_condition_and_once_on_recovery() -> None:
    row = AlertRow("det")
    assert alerts._due(SETTINGS, row, FINE, 0) is None  # ok from the start: nothing to say
    assert alerts._due(SETTINGS, row, LAG, 10) is False  # a new condition
    row = announce(row, LAG, 10)
    assert alerts._due(SETTINGS, row, LAG, 20) is None
    assert alerts._due(SETTINGS, row, FAIL, 30) is False  # another condition
    row = announce(row, FAIL, 30)
    assert alerts._due(SETTINGS, row, FINE, 40) is False  # recovery
    row = announce(row, FINE, 40)
    assert alerts._due(SETTINGS, row, FINE, 50) is None


def test_a_lasting_condition_is_repeated_every_repeat_every() -> None:
    row = AlertRow("det")
    row = announce(row, LAG, 0)
    assert alerts._due(SETTINGS, row, LAG, SIX_HOURS - 1) is None
    assert alerts._due(SETTINGS, row, LAG, SIX_HOURS) is True  # a reminder


def test_a_flapping_condition_waits_for_repeat_every() -> None:
    row = AlertRow("det")
    row = announce(row, LAG, 0)
    row = announce(row, FINE, 60)  # recovered a minute later (the recovery was sent)
    assert alerts._due(SETTINGS, row, LAG, 120) is None  # back again: not announced again yet
    assert alerts._due(SETTINGS, row, LAG, SIX_HOURS + 1) is False  # now it is


def test_messages_are_short_and_say_host_job_health_reason_and_what_to_do() -> None:
    m = alerts.message(FAIL, "det", OK, reminder=False)
    assert m["subject"].endswith(": det is failing")
    assert m["text"].endswith(
        "job det is failing: the last 3 cycles could not run. What to do: fix it."
    )
    assert alerts.message(FINE, "det", "failing:cycles", reminder=False)["text"].endswith(
        "job det is ok again (it was failing)."
    )
    assert ": det is still failing" in alerts.message(FAIL, "det", FAIL.key, True)["subject"]


def test_the_webhook_target_shown_is_its_host_never_its_path() -> None:
    s = AlertSettings(webhook="https://user:pw@hooks.slack.com/services/T0/B0/token")
    assert alerts.target(s, "webhook") == "hooks.slack.com"
    assert alerts.target(AlertSettings(webhook="http://127.0.0.1:8080/x"), "webhook") == (
        "127.0.0.1:8080"
    )

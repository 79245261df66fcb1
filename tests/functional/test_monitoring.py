"""The monitoring files of examples/monitoring: the Prometheus rules pass promtool (their syntax
and their unit tests), and every metric the dashboard and the rules name is one the tool
exports (read from what `run --metrics-file` writes, not from a list kept here)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import LONG_AGO, CliEnv

MONITORING = Path(__file__).resolve().parents[2] / "examples" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
RULES = MONITORING / "alerts.yml"
RULE_TESTS = MONITORING / "alerts_test.yml"
NAME = re.compile(r"\bglobus_autosync_[a-z_]+\b")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: .ci/run installs the Debian package prometheus")
        pytest.skip("promtool is not installed (apt-get install prometheus provides it)")
    return found


@pytest.mark.parametrize(
    "args", [("check", "rules", RULES.name), ("test", "rules", RULE_TESTS.name)]
)
def test_promtool_accepts_the_rules_and_their_unit_tests(args: tuple[str, ...]) -> None:
    res = subprocess.run(
        [promtool(), *args], cwd=MONITORING, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout + res.stderr


def exported(env: CliEnv) -> set[str]:
    env.write("a.dat", "a", mtime=LONG_AGO)
    return set(re.findall(r"^# TYPE (\S+) ", env.metrics(), re.MULTILINE))


def test_every_metric_the_dashboard_and_rules_name_is_exported(env: CliEnv) -> None:
    names = exported(env)
    assert "globus_autosync_health" in names  # what the tool wrote, read back
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used_by_dashboard = {n for e in exprs for n in NAME.findall(e)}
    used_by_rules = set(NAME.findall(RULES.read_text()))
    assert used_by_dashboard <= names, used_by_dashboard - names
    assert used_by_rules <= names, used_by_rules - names
    assert set(NAME.findall(RULE_TESTS.read_text())) <= names
    # the dashboard shows every metric, per job: an `autosync_job` variable that each query
    # uses (`job` is Prometheus's own label, the scrape job)
    assert used_by_dashboard == names, names - used_by_dashboard
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource", "autosync_job"]
    assert all('autosync_job=~"$autosync_job"' in e for e in exprs)

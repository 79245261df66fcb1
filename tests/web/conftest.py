"""The status page's tests: a source, destination and state per test (tests/functional's
CliEnv), a `watch --http` or `serve` on a free port, and headless Chromium from Debian driven by
Selenium with Debian's chromedriver (nothing is downloaded). Without Chromium the browser tests
skip, except in CI (CI set), where its absence fails them (as tests/faults does)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..functional.globus_env import gx  # noqa: F401  (the emulated Globus fixture, for these tests too)
from ..functional.helpers import CliEnv, console_script, free_port, wait_for
from .helpers import Http

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1280,1000"]  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> CliEnv:
    return CliEnv(tmp_path)


@pytest.fixture
def server(env: CliEnv) -> Iterator[Callable[..., Http]]:
    """start("watch" or "serve", *args, environ=...): the command with --http on a free port,
    once it answers."""
    procs: list[subprocess.Popen[str]] = []

    def start(command: str, *args: str, environ: dict[str, str] | None = None) -> Http:
        port = free_port()
        proc = subprocess.Popen(
            [*console_script(), command, *args, "--http", f"127.0.0.1:{port}"],
            env=environ or env.environ(), cwd=env.root, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        procs.append(proc)
        http = Http(port)
        wait_for(f"{command} --http to answer", lambda: http.up() or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()
        return http

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def chromium_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            return f"{path} is missing (Debian: apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium (Debian's), a fresh profile, driven through Debian's chromedriver."""
    why = chromium_missing()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the browser tests cannot run: {why}")
        pytest.skip(f"browser tests skipped: {why}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()

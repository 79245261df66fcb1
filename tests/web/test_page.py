"""The status page in a real browser (headless Chromium), served by a `watch --http` that syncs
real files with the local transport."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..functional.helpers import CliEnv, job_toml, wait_for
from .helpers import Http


def two_jobs(env: CliEnv) -> None:
    """detector: syncs src to dst; camera: its source is missing, so its cycles fail."""
    env.configure(
        job_toml("detector", interval="0.3s", batch_window="0s"),
        job_toml("camera", source="nowhere", destination="dst2", interval="0.3s",
                 alert_after=1),
    )  # fmt: skip
    (env.root / "dst2").mkdir()


# The page replaces its cards as it refreshes itself, so an element found a moment ago may be
# gone: read what is shown in one script, at one instant.
def card_attr(browser: Any, job: str, attr: str) -> str | None:
    value = browser.execute_script(
        "return document.getElementById(arguments[0]).getAttribute(arguments[1]);",
        f"job-{job}",
        attr,
    )
    return None if value is None else str(value)


def text_of(browser: Any, job: str, cls: str) -> str:
    return str(
        browser.execute_script(
            "return document.getElementById(arguments[0]).querySelector('.' + arguments[1])"
            ".innerText;",
            f"job-{job}",
            cls,
        )
    )


def count(browser: Any, css: str) -> int:
    return int(
        browser.execute_script("return document.querySelectorAll(arguments[0]).length;", css)
    )


def row_classes(browser: Any) -> list[str]:
    return list(
        browser.execute_script(
            "return [...document.querySelectorAll('table.batches tbody tr')].map(r => r.className);"
        )
    )


def click(browser: Any, css: str) -> None:
    """Clicks the element as a user does, finding it again if the page replaced it."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(10):
        try:
            browser.find_element(By.CSS_SELECTOR, css).click()
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{css} was replaced ten times in a row")


def test_the_page_of_a_watch_shows_each_job_refreshes_itself_and_loads_nothing_from_elsewhere(
    env: CliEnv, server: Callable[..., Http], browser: Any, tmp_path: Path
) -> None:
    two_jobs(env)
    for i in range(3):
        env.write(f"run1/frame_{i}.tif", b"x" * 1000 * (i + 1))
    http = server("watch")
    wait_for("the first files", lambda: http.json("/api/v1/status")["jobs"][0]["done"] == 3)
    wait_for("camera failing", lambda: http.json("/api/v1/status")["jobs"][1]["health"]["state"]
             == "failing")  # fmt: skip
    browser.get(http.base + "/")
    assert card_attr(browser, "detector", "data-health") == "ok"
    assert "OK" in text_of(browser, "detector", "state")
    assert text_of(browser, "detector", "done").startswith("3 files")
    assert card_attr(browser, "camera", "data-health") == "failing"
    assert "Failing" in text_of(browser, "camera", "state")
    assert "What to do" in text_of(browser, "camera", "action")
    assert count(browser, "#job-detector svg rect.bar") > 0

    # a new batch appears without a reload (a mark on the window survives)
    browser.execute_script("window.__noReload = 42;")
    env.write("run2/frame_9.tif", b"y" * 5000)
    wait_for("the new file on the page",
             lambda: text_of(browser, "detector", "done").startswith("4 files"))  # fmt: skip
    assert browser.execute_script("return window.__noReload;") == 42

    # follow the job's link to its page: its batches, the new one among them
    click(browser, "#job-detector h2 a")
    wait_for("the job's page", lambda: urlsplit(browser.current_url).path == "/jobs/detector")
    rows = row_classes(browser)
    assert len(rows) >= 2 and all(r == "succeeded" for r in rows), rows
    browser.execute_script("window.__noReload = 7;")
    before = len(rows)
    env.write("run3/frame_10.tif", b"z" * 10)
    wait_for("a new batch row without a reload", lambda: len(row_classes(browser)) == before + 1)
    assert browser.execute_script("return window.__noReload;") == 7

    # everything the page loaded (its script's fetches too) came from this server
    urls = browser.execute_script(
        "return performance.getEntriesByType('navigation').concat("
        "performance.getEntriesByType('resource')).map(e => e.name);"
    )
    assert urls and any("/static/refresh.js" in u for u in urls)
    assert any("fragment=1" in u for u in urls)
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in urls), urls
    logs = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert not logs, logs  # no CSP violation, no script error

    shot = tmp_path / "status-page.png"
    browser.get(http.base + "/")
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 1000
    print(f"screenshot of the status page: {shot}")


def test_the_page_is_readable_on_a_phone(
    env: CliEnv, server: Callable[..., Http], browser: Any, tmp_path: Path
) -> None:
    env.write("a.tif", b"a")
    env.run()
    http = server("serve")
    browser.set_window_size(375, 800)
    browser.get(http.base + "/")
    width = browser.execute_script("return document.documentElement.scrollWidth;")
    assert width <= 375  # nothing wider than the screen: no sideways scrolling
    shot = tmp_path / "status-page-phone.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot on a phone-sized screen: {shot}")
    assert os.path.getsize(shot) > 1000

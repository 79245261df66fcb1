"""States in which data does not move, as the page and /healthz say them: names a Globus
transfer cannot carry, and a destination that lost files it had confirmed (an audit)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..functional.globus_env import Globus
from ..functional.helpers import LONG_AGO, CliEnv, job_toml
from .helpers import Http


def test_unsendable_names_on_the_page_and_healthz(gx: Globus, server: Callable[..., Http]) -> None:
    gx.env.write("good.dat", b"good", mtime=LONG_AGO)
    with open(os.fsencode(gx.src) + b"/caf\xe9.dat", "wb") as fh:
        fh.write(b"latin")
    gx.send()
    gx.run(code=None)  # a later run: still said
    http = server("serve", environ=gx.environ())
    status, _, body = http.get("/healthz")
    assert status == 503
    assert b"xmas: WAITING: 1 file name cannot be sent (latest caf\\xe9.dat" in body
    page = http.get("/")[2].decode()
    assert "waiting" in page and "1 file name cannot be sent" in page
    job = http.get("/jobs/xmas")[2].decode()
    assert "unsendable" in job and "caf\\xe9.dat" in job and "name is not valid UTF-8" in job


def test_a_destination_that_lost_files_on_the_page_and_healthz(
    env: CliEnv, server: Callable[..., Http]
) -> None:
    env.configure(job_toml(verify_every="1s"))
    env.write("scan/a.tif", b"a")
    env.write("scan/b.tif", b"b")
    env.run()
    (env.dst / "scan" / "a.tif").unlink()
    time.sleep(1.05)
    env.run()  # the scheduled audit finds it
    http = server("serve")
    status, _, body = http.get("/healthz")
    assert status == 503
    assert b"detector: FAILING: the destination no longer holds 1 of the files" in body
    page = http.get("/")[2].decode()
    assert "failing" in page and "no longer holds 1 of the files it had confirmed" in page
    assert "verify --repair --job detector" in page

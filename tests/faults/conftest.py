"""The fault suite needs libfiu's fiu-run (Debian: fiu-utils). Without it the suite is skipped,
except in CI (the environment variable CI set), where its absence fails the suite."""

from __future__ import annotations

import os

import pytest

from .injector import missing


@pytest.fixture
def injector() -> None:
    why = missing()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the fault injector cannot run: {why}")
    pytest.skip(f"fault injection suite skipped: {why}")

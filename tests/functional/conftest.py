"""Fixtures for the end-to-end tests: each test gets its own source, destination and state."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .globus_env import gx  # noqa: F401  (the emulated Globus fixture, for every module here)
from .helpers import CliEnv, watches


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module with ``TRANSFERS = (1, 4)`` runs each test that uses ``env`` once per value."""
    values = getattr(metafunc.module, "TRANSFERS", None)
    if values and "env" in metafunc.fixturenames:
        metafunc.parametrize("env", values, indirect=True, ids=lambda n: f"transfers={n}")


@pytest.fixture
def env(request: pytest.FixtureRequest, tmp_path: Path) -> CliEnv:
    return CliEnv(tmp_path, getattr(request, "param", None))


@pytest.fixture
def clean_logging() -> Iterator[None]:
    """For tests that call the CLI in-process: it replaces the root logger's handlers; put back
    what was there and close what it opened."""
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    yield
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    for handler in before:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
def watcher(env: CliEnv) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `watch` with the given arguments (waiting until it has started); killed at the end."""
    with watches(env) as start:
        yield start

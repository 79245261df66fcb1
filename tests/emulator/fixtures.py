"""pytest fixtures and helpers around :class:`TransferEmulator`.

Import the fixtures into a conftest.py to use them elsewhere::

    from tests.emulator.fixtures import globus_emulator, globus_emulator_factory  # noqa: F401
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import globus_sdk
import pytest
from globus_sdk.scopes import FlowsScopes
from globus_sdk.transport import RetryConfig, RetryContext

from .server import TransferEmulator

SRC_COLLECTION = "0b5c2f1e-7a3d-4c6e-9f8a-1d2c3b4a5e6f"
DST_COLLECTION = "7e6d5c4b-3a2f-4e1d-8c9b-0a1b2c3d4e5f"


def fast_backoff(ctx: RetryContext) -> float:
    """Retry quickly, but honour a Retry-After header (the SDK stores it on the ctx)."""
    return ctx.backoff if ctx.backoff is not None else 0.01


def fast_retry_config(max_retries: int = 5) -> RetryConfig:
    """A RetryConfig for tests: same checks and status codes, near-zero backoff."""
    return RetryConfig(max_retries=max_retries, backoff=fast_backoff, max_sleep=5)


@dataclass
class EmulatorHarness:
    """A started emulator with two collections, and SDK objects pointed at it."""

    emulator: TransferEmulator
    src_id: str
    dst_id: str
    src_dir: Path
    dst_dir: Path
    _closing: list[globus_sdk.GlobusApp | globus_sdk.BaseClient] = field(default_factory=list)

    def client_app(self, app_name: str = "emulator-tests", **config: Any) -> globus_sdk.ClientApp:
        """A ClientApp with the emulator's default client credentials, memory storage."""
        config.setdefault("token_storage", "memory")
        app = globus_sdk.ClientApp(
            app_name,
            client_id=self.emulator.DEFAULT_CLIENT_ID,
            client_secret=self.emulator.DEFAULT_CLIENT_SECRET,
            config=globus_sdk.GlobusAppConfig(**config),
        )
        self._closing.append(app)
        return app

    def transfer_client(
        self, app: globus_sdk.GlobusApp | None = None, *, max_retries: int = 5
    ) -> globus_sdk.TransferClient:
        """A TransferClient on ``app`` (default: a new ClientApp) with fast retries."""
        client = globus_sdk.TransferClient(
            app=app if app is not None else self.client_app(),
            retry_config=fast_retry_config(max_retries),
        )
        self._closing.append(client)
        return client

    def close(self) -> None:
        for item in reversed(self._closing):
            item.close()
        self._closing.clear()


@pytest.fixture
def globus_emulator_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., EmulatorHarness]]:
    """Call with TransferEmulator keyword arguments (task_delay=, max_active=, ...).

    The SDK is pointed at the emulator through the environment (monkeypatched), HOME is
    a temporary directory, and the emulator must end without internal errors.
    """
    harnesses: list[EmulatorHarness] = []

    def make(**kwargs: Any) -> EmulatorHarness:
        index = len(harnesses)
        src_dir = tmp_path / f"emulated-src-{index}"
        dst_dir = tmp_path / f"emulated-dst-{index}"
        emulator = TransferEmulator({SRC_COLLECTION: src_dir, DST_COLLECTION: dst_dir}, **kwargs)
        emulator.start()
        harness = EmulatorHarness(emulator, SRC_COLLECTION, DST_COLLECTION, src_dir, dst_dir)
        harnesses.append(harness)
        for name in list(os.environ):
            if name.startswith("GLOBUS_SDK_"):
                monkeypatch.delenv(name)
        for name, value in emulator.env().items():
            monkeypatch.setenv(name, value)
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        monkeypatch.setenv("HOME", str(home))
        return harness

    yield make
    errors: list[str] = []
    for harness in harnesses:
        harness.close()
        harness.emulator.stop()
        errors.extend(harness.emulator.server_errors)
    assert not errors, "emulator internal errors:\n" + "\n".join(errors)


@pytest.fixture
def globus_emulator(
    globus_emulator_factory: Callable[..., EmulatorHarness],
) -> EmulatorHarness:
    """A started emulator (default settings) with collections SRC_COLLECTION/DST_COLLECTION."""
    return globus_emulator_factory()


FLOW = "3a1f2e4d-5c6b-4a7e-8f9d-0e1f2a3b4c5d"  # a flow id of the tests' own


def write(path: Path, data: bytes, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def submit(
    tc: globus_sdk.TransferClient,
    h: EmulatorHarness,
    items: list[tuple[str, str]],
    *,
    recursive: bool = False,
    **options: Any,
) -> str:
    tdata = globus_sdk.TransferData(h.src_id, h.dst_id, **options)
    for source, destination in items:
        tdata.add_item(source, destination, recursive=recursive)
    return str(tc.submit_transfer(tdata)["task_id"])


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def flows_clients(
    h: EmulatorHarness,
) -> tuple[globus_sdk.SpecificFlowClient, globus_sdk.FlowsClient]:
    app = h.client_app()
    retry = fast_retry_config()
    specific = globus_sdk.SpecificFlowClient(FLOW, app=app, retry_config=retry)
    flows = globus_sdk.FlowsClient(app=app, app_scopes=[FlowsScopes.run_status], retry_config=retry)
    return specific, flows

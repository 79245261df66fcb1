"""Actions: the config keys, the legs' states, splitting a manifest, the schema upgrade."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from globus_autosync.actions.machine import split
from globus_autosync.config import Job, load
from globus_autosync.errors import ConfigError
from globus_autosync.store import SCHEMA_VERSION, ConfirmedFile, Store
from globus_autosync.store import schema as store_schema
from globus_autosync.store.actions import overall

FLOW = "3a1f2e4d-5c6b-4a7e-8f9d-0e1f2a3b4c5d"
BASE = '[[job]]\nname = "d"\nsource = "src"\ndestination = "dst"\n'


# the columns version 6 added (an older database has not got them)
CHUNKS = "".join(
    line + "\n"
    for line in store_schema.SCHEMA.splitlines()
    if line.lstrip().startswith(("chunks", "forgotten"))
)


def _load(tmp_path: Path, extra: str) -> Job:
    path = tmp_path / "autosync.toml"
    path.write_text(BASE + extra)
    return load(path).jobs[0]


def test_the_action_keys_and_their_defaults(tmp_path: Path) -> None:
    toml = (
        f'on_done = "dataset"\nflow = "{FLOW.upper()}"\nflow_input = {{ kind = "xpcs", n = 2 }}\n'
        'command = ["/bin/true", "{manifest}"]\ndataset_marker = "*.done"\n'
    )
    job = _load(tmp_path, toml)
    assert job.actions.on_done == "dataset"
    assert job.actions.flow == FLOW
    assert json.loads(job.actions.flow_input) == {"kind": "xpcs", "n": 2}
    assert job.actions.command == ("/bin/true", "{manifest}")
    assert job.actions.command_timeout == 3600.0
    assert job.actions.dataset_quiet == 600.0
    assert job.actions.dataset_marker == "*.done"
    plain = _load(tmp_path, "")
    assert plain.actions.on_done is None and plain.actions.flow is None


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ('on_done = "batch"\n', ["'on_done'", "needs a flow"]),
        ('on_done = "scan"\ncommand = ["x"]\n', ["'on_done'", "not one of batch, dataset"]),
        ('command = ["x"]\n', ["'command'", "needs on_done"]),
        (f'flow = "{FLOW}"\n', ["'flow'", "needs on_done"]),
        ('on_done = "batch"\nflow = "not-a-uuid"\n', ["'flow'", "not a flow id"]),
        ('on_done = "batch"\ncommand = []\n', ["'command'", "list of strings"]),
        ('on_done = "batch"\ncommand = ["x", 1]\n', ["'command'", "list of strings"]),
        ('on_done = "batch"\ncommand = ["x"]\ndataset_quiet = "1m"\n', ["'dataset_quiet'"]),
        ('on_done = "batch"\ncommand = ["x"]\nflow_input = { a = 1 }\n', ["'flow_input'"]),
        (
            'on_done = "batch"\ncommand = ["x"]\ncommand_timeout = "soon"\n',
            ["'command_timeout'", "not a duration"],
        ),
    ],
)
def test_bad_action_keys_are_one_line(tmp_path: Path, extra: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, extra)
    message = str(info.value)
    assert "\n" not in message and "job 'd'" in message
    for word in words:
        assert word in message


def test_an_action_is_pending_running_then_failed_or_succeeded() -> None:
    assert overall("pending", None) == "pending"
    assert overall("starting", "running") == "running"
    assert overall("running", "succeeded") == "running"
    assert overall("succeeded", "failed") == "failed"
    assert overall(None, "succeeded") == "succeeded"


def test_a_large_manifest_is_split_into_groups_under_the_limit() -> None:
    files = [ConfirmedFile(1, f"f{i}", 10, 0, f"d/f{i}") for i in range(1000)]
    groups = split(files, 250_000, 100_000)
    assert len(groups) >= 3
    assert [f for g in groups for f in g] == files  # each file once, in order
    assert max(len(g) for g in groups) * 250 <= 100_000


def test_a_database_before_actions_is_upgraded_and_read_before(tmp_path: Path) -> None:
    before = 4  # the version before the actions tables
    assert store_schema.UPGRADES[before] == store_schema.ACTIONS
    older = store_schema.SCHEMA.replace(store_schema.ACTIONS, "").replace(CHUNKS, "")
    assert older != store_schema.SCHEMA and "chunks" not in older
    (tmp_path / "state").mkdir()
    conn = sqlite3.connect(tmp_path / "state" / "state.db")
    conn.executescript(older)
    conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(before),))
    conn.execute("INSERT INTO jobs (id, name) VALUES (1, 'd')")
    conn.commit()
    conn.close()
    ro = Store.open_readonly(tmp_path / "state")
    assert ro is not None
    assert ro.actions.counts(1) == {} and ro.actions.recent(1, 5) == []
    ro.close()
    store = Store.open(tmp_path / "state")
    row = store.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    assert row == (str(SCHEMA_VERSION),)
    with store.tx():
        store.actions.record_batch(
            1, 7, [ConfirmedFile(1, "a.tif", 5, 9, "a.tif")], 100.0, (False, True)
        )
    [action] = store.actions.active(1)
    assert (action.kind, action.batch, action.state, action.cmd_state, action.flow_state) == (
        "batch",
        7,
        "pending",
        "pending",
        None,
    )
    assert store.actions.files(action.id) == [(1, "a.tif", 5, 9, "a.tif")]
    store.close()

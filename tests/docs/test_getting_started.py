"""The getting-started page works exactly as written: every shell block marked runnable is run,
as it is, in a fresh temporary directory holding the repository's examples (what a clone has).
The install step is not marked: the test environment has the package installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "getting-started.md"
RUNNABLE = re.compile(r"<!-- runnable -->\n```bash\n(.*?)```", re.S)


def blocks() -> list[str]:
    return RUNNABLE.findall(PAGE.read_text())


def test_the_page_has_runnable_blocks() -> None:
    assert len(blocks()) >= 2  # the demo and the first local job


@pytest.mark.parametrize("index", range(len(blocks())))
def test_runnable_block(index: int, tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "examples",
        tmp_path / "examples",
        ignore=shutil.ignore_patterns("demo-state", "demo-destination"),
    )
    (tmp_path / "examples" / "demo-destination").mkdir()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path / "home"),  # nothing of the user's own config or state is used
        "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
        "XDG_STATE_HOME": str(tmp_path / "home" / ".local" / "state"),
    }
    env.pop("GLOBUS_AUTOSYNC_CONFIG", None)
    env.pop("GLOBUS_AUTOSYNC_STATE_DIR", None)
    block = blocks()[index]
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{block}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "home" / ".local" / "state" / "globus-autosync").exists()
    if "examples/demo.toml" in block:  # the demo: the sample data arrived, its state stayed
        sample = tmp_path / "examples" / "sample-data"
        sent = sorted(
            p.relative_to(sample)
            for p in sample.rglob("*")
            if p.is_file() and not p.name.endswith(".tmp") and not p.name.startswith(".")
        )
        assert sent
        for rel in sent:
            got = tmp_path / "examples" / "demo-destination" / rel
            assert got.read_bytes() == (sample / rel).read_bytes()
        assert (tmp_path / "examples" / "demo-state" / "state.db").is_file()
        assert "demo: ok" in done.stdout

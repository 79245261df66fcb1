"""The command line itself: options, commands, configuration errors and exit codes."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from globus_autosync import __version__, config

from .helpers import LONG_AGO, CliEnv, console_script, job_toml

# The example of issue 2, verbatim but for source and destination (relative: they resolve
# against the directory of the config file).
CONTRACT_EXAMPLE = """\
[[job]]
name = "detector"                        # required, unique: letters, digits, . _ -
source = "data/detector"                 # required: the local directory to watch
destination = "cluster/detector"         # required: where files go (a directory, for transport "local")
transport = "local"                      # "local" here; "globus" in the next issue
settle = "30s"                           # sent only after size and mtime were unchanged this long (default 30s; "0s" allowed)
exclude = ["*.tmp", ".*"]                # glob patterns on names or relative paths (default none)
symlinks = "skip"                        # "skip" (logged, left) or "follow" (send the target's content; loops detected)
full_scan_every = "24h"                  # used by the performance issue; accept it now
"""  # noqa: E501


def test_version_from_console_script_and_module(env: CliEnv) -> None:
    out = env.cli("--version").stdout
    assert __version__ in out
    res = subprocess.run(
        [sys.executable, "-m", "globus_autosync", "--version"],
        capture_output=True, text=True, check=False, env=env.environ(),
    )  # fmt: skip
    assert res.returncode == 0
    assert __version__ in res.stdout


def test_help_lists_every_command(env: CliEnv) -> None:
    out = env.cli("--help").stdout
    for command in ("init", "check", "baseline", "run", "status", "tasks"):
        assert command in out
    for option in ("--config", "--state-dir", "--debug", "--quiet", "--version"):
        assert option in out


def test_each_command_is_found_in_the_module_that_defines_it() -> None:
    """The lazy group's map (a command's module is imported only when it runs) names every
    command of every module of the CLI, and no other."""
    import importlib
    import pkgutil

    from globus_autosync import cli as cli_pkg
    from globus_autosync.cli import app

    defined = {}
    for info in pkgutil.iter_modules(cli_pkg.__path__):
        module = importlib.import_module(f"globus_autosync.cli.{info.name}")
        for command in getattr(module, "COMMANDS", ()) if info.name != "app" else ():
            defined[command.name] = info.name
    assert defined == app.COMMANDS
    assert all(app.cli.get_command(None, name) is not None for name in defined)  # type: ignore[arg-type]


def test_a_quiet_run_does_not_import_the_other_commands(env: CliEnv) -> None:
    """A cron `run` starts a fresh interpreter: it loads what running needs, nothing more."""
    env.cli("run")
    code = (
        "import sys; from globus_autosync.cli import main\n"
        "try:\n    main(['--quiet', 'run'])\n"
        "except SystemExit:\n    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('globus_autosync', "
        "'rich', 'globus_sdk', 'urllib.request', 'smtplib', 'json', 'jinja2')))))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env.environ())  # fmt: skip
    loaded = set(res.stdout.split())
    assert "globus_autosync.cli.sync" in loaded and "globus_autosync.engine.cycle" in loaded
    for unneeded in ("globus_autosync.cli.reports", "globus_autosync.cli.service",
                     "globus_autosync.cli.globus", "globus_autosync.monitoring.alerts", "rich",
                     "globus_sdk", "urllib.request", "smtplib", "globus_autosync.cleanup.deleter",
                     "globus_autosync.sources.local.chunks", "globus_autosync.web",
                     "globus_autosync.web.app", "globus_autosync.cli.serve", "jinja2"):  # fmt: skip
        assert unneeded not in loaded


def test_usage_errors_exit_2(env: CliEnv) -> None:
    res = env.cli("frobnicate", code=2)
    assert "Traceback" not in res.stderr
    env.cli("run", "--no-such-option", code=2)
    env.cli("tasks", "--limit", "0", code=2)
    res = env.cli("run", "--job", "detectr", code=2)
    assert "did you mean 'detector'" in res.stderr
    res = env.cli("baseline", "--before", "yesterday", code=2)
    assert "ISO 8601" in res.stderr


def test_contract_example_config_is_accepted(tmp_path: Path) -> None:
    env = CliEnv(tmp_path)
    env.config.write_text(CONTRACT_EXAMPLE)
    src, dst = tmp_path / "data" / "detector", tmp_path / "cluster" / "detector"
    src.mkdir(parents=True)
    dst.mkdir(parents=True)
    # run from elsewhere: relative paths follow the config file, not the working directory
    res = env.cli("check", cwd=Path("/"))
    assert f"source {src} is readable" in res.stdout
    assert f"{dst} is writable" in res.stdout
    cfg = config.load(env.config)
    (job,) = cfg.jobs
    assert (job.name, job.source, job.destination) == ("detector", src, str(dst))
    assert (job.transport, job.settle, job.symlinks) == ("local", 30.0, "skip")
    assert (job.exclude, job.full_scan_every) == (("*.tmp", ".*"), 86400.0)

    for name in ("run_001.tif", "scratch.tmp", ".hidden", "sub/run_002.tif"):
        path = src / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(name.encode())
        os.utime(path, (LONG_AGO, LONG_AGO))  # settled long ago
    (src / "fresh.tif").write_bytes(b"still being written")
    env.cli("run", cwd=Path("/"))
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*")) == [
        "run_001.tif", "sub", "sub/run_002.tif",
    ]  # fmt: skip
    assert env.status()["waiting"] == 1  # fresh.tif: not unchanged for 30 s yet


def test_config_and_state_dir_options_override_environment(env: CliEnv, tmp_path: Path) -> None:
    other_state = tmp_path / "other-state"
    env.write("a.dat", "a")
    environ = env.environ() | {"GLOBUS_AUTOSYNC_CONFIG": str(tmp_path / "nope.toml")}
    env.cli("-c", str(env.config), "--state-dir", str(other_state), "run", env=environ)
    assert (other_state / "state.db").exists()
    assert not env.db_path.exists()
    assert (env.dst / "a.dat").read_text() == "a"
    # and the short forms, with the environment only for the state dir
    env.cli("--config", str(env.config), "-q", "run", env=environ)


def test_quiet_run_prints_nothing_when_all_is_well(env: CliEnv) -> None:
    env.write("a.dat", "a")
    res = env.cli("-q", "run")
    assert res.stdout == ""
    assert res.stderr == ""
    assert (env.dst / "a.dat").exists()


def test_init_writes_a_commented_example_and_never_overwrites(env: CliEnv) -> None:
    target = env.root / "conf" / "new.toml"
    res = env.cli("init", str(target))
    assert str(target) in res.stdout
    text = target.read_text()
    assert text.count("#") > 10
    cfg = config.load(target)
    assert [j.name for j in cfg.jobs] == ["detector"]
    target.write_text("# mine\n")
    res = env.cli("init", str(target), code=2)
    assert "already exists" in res.stderr
    assert target.read_text() == "# mine\n"


def test_init_without_path_writes_the_config_named_by_the_environment(env: CliEnv) -> None:
    env.config.unlink()
    env.cli("init")
    assert "[[job]]" in env.config.read_text()
    env.cli("init", code=2)


def test_check_passes_when_everything_is_usable(env: CliEnv) -> None:
    lines = env.cli("check").stdout.splitlines()
    assert len(lines) >= 4
    assert all(line.startswith("ok") for line in lines), lines


def test_check_fails_on_missing_source_and_destination(env: CliEnv) -> None:
    env.configure(job_toml(source="nowhere", destination="neither"))
    res = env.cli("check", code=None)
    assert res.returncode != 0
    fails = [line for line in res.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 2, res.stdout
    assert any("nowhere" in line for line in fails)
    assert any("neither" in line for line in fails)


def test_check_job_selects_one_job(env: CliEnv) -> None:
    env.configure(job_toml(), job_toml(name="broken", source="nowhere"))
    env.cli("check", code=3)
    res = env.cli("check", "--job", "detector")
    assert "broken" not in res.stdout


def test_check_fails_on_a_garbage_state_database(env: CliEnv) -> None:
    env.state.mkdir()
    env.db_path.write_bytes(b"this is not a database" * 100)
    res = env.cli("check", code=3)
    assert any(
        line.startswith("FAIL") and "state.db" in line for line in res.stdout.splitlines()
    ), res.stdout


# -- configuration errors: one line naming file, job and key; exit 2; no traceback -----------


def _one_line_error(res: subprocess.CompletedProcess[str], *words: str) -> str:
    assert res.returncode == 2, res
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize(
    ("table", "words"),
    [
        (job_toml(settel="1s"), ["settel", "did you mean 'settle'"]),
        (job_toml(exclued=["*.tmp"]), ["exclued", "did you mean 'exclude'"]),
        (job_toml(settle="30 seconds"), ["settle", "duration"]),
        (job_toml(settle="-5s"), ["settle"]),
        (job_toml(full_scan_every="1w"), ["full_scan_every"]),
        (job_toml(symlinks="maybe"), ["symlinks", "skip"]),
        (job_toml(transport="ftp"), ["transport", "local"]),
        (job_toml(exclude="*.tmp"), ["exclude"]),
        (job_toml(name="bad name!"), ["name", "letters"]),
        ('[[job]]\nname = "detector"\nsource = "src"\n', ["detector", "destination"]),
        ('[[job]]\nname = "detector"\ndestination = "dst"\n', ["detector", "source"]),
        ('[[job]]\nsource = "src"\ndestination = "dst"\n', ["[[job]] number 1", "name"]),
        (job_toml() + job_toml(), ["detector", "name", "duplicate"]),
        ("[[job]]\nname = \n", ["not valid TOML"]),
        ("[[jobs]]\nname = 'x'\n", ["jobs", "did you mean 'job'"]),
        ("", ["no [[job]]"]),
    ],
)
def test_malformed_config_is_one_line_exit_2(env: CliEnv, table: str, words: list[str]) -> None:
    env.config.write_text(table)
    line = _one_line_error(env.cli("run", code=None), str(env.config), *words)
    assert line.startswith("globus-autosync: error:")
    assert not env.db_path.exists()


def test_every_command_reports_a_malformed_config_the_same_way(env: CliEnv) -> None:
    env.configure(job_toml(settel="1s"))
    for args in (["check"], ["status"], ["tasks"], ["baseline"], ["run", "--dry-run"]):
        _one_line_error(env.cli(*args, code=None), str(env.config), "settel", "settle")
    assert not env.db_path.exists()


def test_missing_config_names_init(env: CliEnv) -> None:
    env.config.unlink()
    _one_line_error(env.cli("run", code=None), str(env.config), "init")


def test_debug_allows_a_traceback_for_a_config_error(env: CliEnv) -> None:
    env.configure(job_toml(settle="soon"))
    res = env.cli("--debug", "run", code=2)
    assert "Traceback" in res.stderr
    assert "settle" in res.stderr


def _on_a_terminal(env: CliEnv, *args: str, columns: int = 80) -> str:
    """What a command prints on a terminal ``columns`` wide (a pseudo-terminal)."""
    main, child = pty.openpty()
    environ = {**env.environ(), "COLUMNS": str(columns), "TERM": "xterm"}
    proc = subprocess.Popen(
        [*console_script(), *args], env=environ, cwd=env.root, stdout=child, stderr=child
    )
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=60)
    os.close(main)
    text = out.decode("utf-8", errors="replace")
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


def test_status_and_tasks_fit_80_columns_and_cut_nothing(env: CliEnv) -> None:
    long_name = "detector_" + "x" * 60
    env.configure(job_toml(long_name))
    deep = "run_2026-12-04/" + "/".join(f"sub{i}" for i in range(8)) + "/frame_000001.tif"
    env.write(deep, b"frame")
    secret = env.write("unreadable_frame_with_a_long_name_0000000001.tif", b"s")
    secret.chmod(0)
    env.run(code=None)
    for command in ("status", "tasks"):
        out = _on_a_terminal(env, command)
        lines = out.splitlines()
        assert lines, command
        assert max(len(line) for line in lines) <= 80, out
        assert "…" not in out, out
    secret.chmod(0o644)


def test_verify_shows_its_progress_on_a_terminal_only(env: CliEnv) -> None:
    for d in range(3):
        env.write(f"scan{d}/frame.tif", b"frame")
    env.run()
    shown = _on_a_terminal(env, "verify")
    assert "detector: auditing the destination" in shown and "directories" in shown
    assert "detector: 3 confirmed, 3 at the destination, 0 missing" in shown
    piped = env.cli("verify")  # not a terminal: the summary line alone
    assert piped.stderr == "" and "auditing" not in piped.stdout

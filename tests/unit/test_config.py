"""The configuration file: defaults, durations, paths, and errors that name file, job and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from globus_autosync.config import (
    AlertSettings,
    Config,
    GlobusSettings,
    Job,
    load,
    parse_duration,
    reference,
)
from globus_autosync.config.keys import KEYS
from globus_autosync.errors import EXIT_USAGE, ConfigError

UUID_A = "ddb59aef-6d04-11e5-ba46-22000b92c6ec"
UUID_B = "ddb59af0-6d04-11e5-ba46-22000b92c6ec"


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "conf" / "autosync.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return load(path)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert info.value.exit_code == EXIT_USAGE
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "conf" / "autosync.toml"))
    return message


MINIMAL = '[[job]]\nname = "det"\nsource = "/data/det"\ndestination = "/mnt/det"\n'


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0),
        ("30s", 30),
        ("5m", 300),
        ("24h", 86400),
        ("2d", 172800),
        ("1.5h", 5400),
        (" 10 s ", 10),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "s", "30 seconds", "1w", "-5s", "5ms", "1h30m", "1e3s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_defaults(tmp_path: Path) -> None:
    (job,) = _load(tmp_path, MINIMAL).jobs
    assert job == Job(name="det", source=Path("/data/det"), destination="/mnt/det")
    assert (job.transport, job.settle, job.exclude, job.symlinks) == ("local", 30.0, (), "skip")
    assert job.full_scan_every == 86400.0
    assert job.transfers == 4


@pytest.mark.parametrize("value", [1, 4, 16])
def test_transfers(tmp_path: Path, value: int) -> None:
    (job,) = _load(tmp_path, MINIMAL + f"transfers = {value}\n").jobs
    assert job.transfers == value


def test_every_documented_key(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        '[[job]]\nname = "a.b_c-1"\nsource = "/s"\ndestination = "/d"\ntransport = "local"\n'
        'settle = "0s"\nexclude = ["*.tmp", "raw/*"]\nsymlinks = "follow"\n'
        'full_scan_every = "1d"\n',
    )
    (job,) = cfg.jobs
    assert (job.name, job.settle, job.exclude, job.symlinks, job.full_scan_every) == (
        "a.b_c-1",
        0.0,
        ("*.tmp", "raw/*"),
        "follow",
        86400.0,
    )


def test_relative_paths_resolve_against_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = _load(
        tmp_path,
        '[[job]]\nname = "j"\nsource = "data/in"\ndestination = "../out"\n'
        '[[job]]\nname = "k"\nsource = "~/in"\ndestination = "/abs"\n',
    )
    j, k = cfg.jobs
    assert j.source == tmp_path / "conf" / "data" / "in"
    assert Path(j.destination) == (tmp_path / "conf" / ".." / "out").absolute()
    assert k.source == tmp_path / "home" / "in"
    assert cfg.path == tmp_path / "conf" / "autosync.toml"


def test_a_relative_config_path_still_resolves_against_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "c.toml").write_text(MINIMAL.replace("/data/det", "src"))
    monkeypatch.chdir(tmp_path)
    (job,) = load(Path("conf/c.toml")).jobs
    assert job.source == tmp_path / "conf" / "src"


def test_select(tmp_path: Path) -> None:
    cfg = _load(tmp_path, MINIMAL + MINIMAL.replace('"det"', '"other"'))
    assert [j.name for j in cfg.select(None)] == ["det", "other"]
    assert [j.name for j in cfg.select("other")] == ["other"]
    with pytest.raises(ConfigError, match="did you mean 'other'"):
        cfg.select("othr")
    with pytest.raises(ConfigError, match="known: det, other"):
        cfg.select("zzzzzz")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (MINIMAL + 'setle = "1s"\n', ["job 'det'", "key 'setle'", "did you mean 'settle'"]),
        (MINIMAL + 'settle = "fast"\n', ["job 'det'", "key 'settle'", "30s, 5m"]),
        (MINIMAL + "settle = 30\n", ["job 'det'", "key 'settle'", "expected a string"]),
        (MINIMAL + 'full_scan_every = "0s"\n', ["key 'full_scan_every'", "at least"]),
        (MINIMAL + 'symlinks = "yes"\n', ["key 'symlinks'", "skip, follow"]),
        (MINIMAL + 'transport = "scp"\n', ["key 'transport'", "local, globus"]),
        (MINIMAL + 'exclude = "*.tmp"\n', ["key 'exclude'", "a list"]),
        (MINIMAL + 'exclude = ["*.tmp", 3]\n', ["key 'exclude'", "glob patterns"]),
        (MINIMAL + 'exclude = [""]\n', ["key 'exclude'"]),
        (MINIMAL + f'source_collection = "{UUID_A}"\n', ["key 'source_collection'", "globus"]),
        (MINIMAL + "transfers = 0\n", ["job 'det'", "key 'transfers'", "at least 1"]),
        (MINIMAL + "transfers = -2\n", ["key 'transfers'", "at least 1"]),
        (MINIMAL + 'transfers = "4"\n', ["key 'transfers'", "a whole number"]),
        (MINIMAL + "transfers = 2.5\n", ["key 'transfers'", "a whole number"]),
        (MINIMAL + "transfers = true\n", ["key 'transfers'", "a whole number"]),
        (
            '[[job]]\nname = "g"\nsource = "/s"\ndestination = "/d"\ntransport = "globus"\n'
            f'source_collection = "{UUID_A}"\ndestination_collection = "{UUID_B}"\n'
            "transfers = 2\n",
            ["job 'g'", "key 'transfers'", 'applies only to transport = "local"'],
        ),
        (MINIMAL.replace('"det"', '"no spaces"'), ["key 'name'", "letters, digits"]),
        (MINIMAL.replace('"det"', "7"), ["key 'name'", "expected a string"]),
        (MINIMAL.replace('name = "det"\n', ""), ["[[job]] number 1", "'name'", "missing"]),
        (MINIMAL.replace('source = "/data/det"\n', ""), ["job 'det'", "'source'", "missing"]),
        (MINIMAL.replace('destination = "/mnt/det"\n', ""), ["job 'det'", "'destination'"]),
        (MINIMAL + MINIMAL, ["job 'det'", "key 'name'", "duplicate"]),
        (MINIMAL + MINIMAL.replace("det", "two") + "bogus = 1\n", ["job 'two'", "key 'bogus'"]),
        ('[job]\nname = "det"\n', ["[job] defines one table", "replace [job] with [[job]]"]),
        ("job = 3\n", ["top level", "key 'job'", "a list"]),
        ("[[job]]\nname = \n", ["not valid TOML", "line"]),
        ("jobs = []\n", ["top level", "key 'jobs'", "did you mean 'job'"]),
        ("", ["no [[job]]"]),
        ("[globus]\nclientid = 'x'\n" + MINIMAL, ["[globus]", "key 'clientid'", "client_id"]),
        (
            '[[job]]\nname = "g"\nsource = "/s"\ndestination = "rel"\ntransport = "globus"\n'
            f'source_collection = "{UUID_A}"\ndestination_collection = "{UUID_B}"\n',
            ["job 'g'", "key 'destination'", "absolute"],
        ),
        (
            '[[job]]\nname = "g"\nsource = "/s"\ndestination = "/d"\ntransport = "globus"\n'
            'source_collection = "not-a-uuid"\n',
            ["job 'g'", "key 'source_collection'", "UUID"],
        ),
    ],
)
def test_errors_name_file_job_and_key(tmp_path: Path, text: str, words: list[str]) -> None:
    message = _error(tmp_path, text)
    for word in words:
        assert word in message, (word, message)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "conf.toml"
    path.write_bytes(b"[[job]]\nname = '\xff'\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(path)


def test_missing_file_suggests_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="globus-autosync init"):
        load(tmp_path / "nope.toml")


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("source", "destination"),
    [("data", "data"), ("data", "data/mirror"), ("data/inner", "data")],
)
def test_a_local_destination_may_not_overlap_the_source(
    tmp_path: Path, source: str, destination: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[[job]]\nname = "d"\nsource = "{source}"\ndestination = "{destination}"\n')
    with pytest.raises(ConfigError, match=r"job 'd', key 'destination': .* overlaps the source"):
        load(path)


def test_health_and_alert_defaults(tmp_path: Path) -> None:
    cfg = _load(tmp_path, MINIMAL)
    [job] = cfg.jobs
    assert (job.alert_lag, job.alert_after) == (3600.0, 3)
    assert not cfg.alerts.enabled
    cfg = _load(tmp_path, '[alerts]\nemail = ["ops@example.org"]\nsmtp_host = "mail"\n' + MINIMAL)
    a = cfg.alerts
    assert a.enabled and a.email == ("ops@example.org",) and a.webhook is None
    assert (a.smtp_port, a.smtp_starttls, a.smtp_user, a.sender) == (587, True, None, None)
    assert a.repeat_every == 6 * 3600.0
    cfg = _load(
        tmp_path,
        '[alerts]\nwebhook = "https://hooks.example.org/x"\nrepeat_every = "30m"\n'
        'from = "a@b.org"\n' + MINIMAL.replace("[[job]]\n", '[[job]]\nalert_lag = "2h"\n'),
    )
    assert cfg.alerts.webhook == "https://hooks.example.org/x"
    assert (cfg.alerts.repeat_every, cfg.alerts.sender, cfg.jobs[0].alert_lag) == (
        1800.0,
        "a@b.org",
        7200.0,
    )


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('password = "hunter2"', ["key 'password'", "GLOBUS_AUTOSYNC_SMTP_PASSWORD"]),
        ('smtp_password = "hunter2"', ["key 'smtp_password'", "GLOBUS_AUTOSYNC_SMTP_PASSWORD"]),
        ('webhook = "hooks.example.org"', ["key 'webhook'", "not an http(s) URL"]),
        ('email = ["ops@example.org"]', ["key 'smtp_host'", "SMTP server"]),
        ('email = "ops@example.org"', ["key 'email'", "a list"]),
        ('webhook = "https://h/x"\nrepeat = "1h"', ["unknown key", "repeat_every"]),
        ('webhook = "https://h/x"\nsmtp_port = 0', ["key 'smtp_port'"]),
    ],
)
def test_bad_alerts_are_one_line_naming_the_key(
    tmp_path: Path, table: str, words: list[str]
) -> None:
    message = _error(tmp_path, f"[alerts]\n{table}\n{MINIMAL}")
    assert "[alerts]" in message and "hunter2" not in message
    for word in words:
        assert word in message


def test_alert_after_must_be_at_least_one(tmp_path: Path) -> None:
    message = _error(tmp_path, MINIMAL + "alert_after = 0\n")
    assert "key 'alert_after'" in message


# -- source cleanup ------------------------------------------------------------------------------
GLOBUS_JOB = (
    '[[job]]\nname = "g"\nsource = "/s"\ndestination = "/d"\ntransport = "globus"\n'
    f'source_collection = "{UUID_A}"\ndestination_collection = "{UUID_B}"\n'
)


def test_cleanup_is_off_by_default(tmp_path: Path) -> None:
    (job,) = _load(tmp_path, MINIMAL).jobs
    c = job.cleanup
    assert not c.enabled
    assert (c.delete_after, c.keep_free, c.max_deletes, c.delete_empty_dirs) == (
        None,
        None,
        10000,
        True,
    )


@pytest.mark.parametrize(
    ("text", "total", "wanted"),
    [
        ("20%", 1000, 200),
        ("0.5%", 10**6, 5000),
        ("500GB", 1, 500 * 10**9),
        ("2TB", 1, 2 * 10**12),
        ("1.5TiB", 1, int(1.5 * 2**40)),
        ("4096", 1, 4096),
        ("10 MB", 1, 10**7),
        ("1kB", 1, 1000),
    ],
)
def test_keep_free(tmp_path: Path, text: str, total: int, wanted: int) -> None:
    (job,) = _load(tmp_path, MINIMAL + f'keep_free = "{text}"\n').jobs
    assert job.cleanup.enabled and job.cleanup.delete_after is None
    assert job.cleanup.keep_free is not None and job.cleanup.keep_free.bytes_of(total) == wanted


def test_cleanup_keys(tmp_path: Path) -> None:
    text = MINIMAL + 'delete_after = "7d"\nmax_deletes = 50\ndelete_empty_dirs = false\n'
    (job,) = _load(tmp_path, text).jobs
    c = job.cleanup
    assert (c.enabled, c.delete_after, c.max_deletes, c.delete_empty_dirs) == (
        True,
        7 * 86400.0,
        50,
        False,
    )
    (zero,) = _load(tmp_path, MINIMAL + 'delete_after = "0s"\n').jobs
    assert zero.cleanup.enabled and zero.cleanup.delete_after == 0.0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (MINIMAL + 'delete_after = "soon"\n', ["job 'det'", "key 'delete_after'", "duration"]),
        (MINIMAL + 'keep_free = "lots"\n', ["key 'keep_free'", "500GB"]),
        (MINIMAL + 'keep_free = "100%"\n', ["key 'keep_free'", "between 0% and 100%"]),
        (MINIMAL + 'keep_free = "0%"\n', ["key 'keep_free'", "between"]),
        (MINIMAL + 'keep_free = "0GB"\n', ["key 'keep_free'", "more than 0"]),
        (MINIMAL + "keep_free = 20\n", ["key 'keep_free'", "expected a string"]),
        (MINIMAL + "max_deletes = 0\n", ["key 'max_deletes'", "at least 1"]),
        (MINIMAL + 'delete_empty_dirs = "yes"\n', ["key 'delete_empty_dirs'", "true or false"]),
        (MINIMAL + 'delete_afer = "1d"\n', ["key 'delete_afer'", "did you mean 'delete_after'"]),
        (
            GLOBUS_JOB + 'delete_after = "1d"\nverify_checksum = false\n',
            ["job 'g'", "key 'delete_after'", "verify_checksum = true", "checksum"],
        ),
        (
            GLOBUS_JOB + 'keep_free = "10%"\nverify_checksum = false\nsync_level = "mtime"\n',
            ["job 'g'", "key 'keep_free'", "verify_checksum"],
        ),
    ],
)
def test_cleanup_errors(tmp_path: Path, text: str, words: list[str]) -> None:
    message = _error(tmp_path, text)
    for word in words:
        assert word in message, (word, message)


def test_globus_cleanup_with_a_verified_copy(tmp_path: Path) -> None:
    (job,) = _load(tmp_path, GLOBUS_JOB + 'delete_after = "1d"\n').jobs  # verify_checksum default
    assert job.cleanup.enabled
    text = GLOBUS_JOB + 'keep_free = "1TB"\nverify_checksum = false\nsync_level = "checksum"\n'
    (job,) = _load(tmp_path, text).jobs
    assert job.cleanup.keep_free is not None and job.cleanup.keep_free.size == 10**12


REMOTE = (
    f'[[job]]\nname = "drive"\nscan = "globus"\ntransport = "globus"\n'
    f'source_collection = "{UUID_A}"\nsource = "/My Drive/beamtime-2026/"\n'
    f'destination_collection = "{UUID_B}"\ndestination = "/project/xmas/2026"\n'
)


def test_a_source_listed_through_globus(tmp_path: Path) -> None:
    (job,) = _load(tmp_path, REMOTE + 'exclude = ["*.tmp"]\nsettle = "2m"\n').jobs
    assert (job.scan, job.requests_per_second) == ("globus", 5.0)
    assert job.source == Path("/My Drive/beamtime-2026")  # a path on the collection, as given
    assert (job.exclude, job.settle) == (("*.tmp",), 120.0)
    (job,) = _load(tmp_path, REMOTE + "requests_per_second = 20\n").jobs
    assert job.requests_per_second == 20.0
    (job,) = _load(tmp_path, MINIMAL).jobs
    assert job.scan == "local"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (REMOTE.replace('transport = "globus"\n', ""), ["'scan'", 'transport = "globus"']),
        (REMOTE.replace('"/My Drive/beamtime-2026/"', '"beamtime"'), ["'source'", "absolute"]),
        (REMOTE + 'source_collection_path = "/x"\n', ["'source_collection_path'", "remove"]),
        (REMOTE + 'delete_after = "1d"\n', ["'delete_after'", "not built"]),
        (REMOTE + 'keep_free = "10%"\n', ["'keep_free'", "not available"]),
        (REMOTE + "requests_per_second = 25\n", ["'requests_per_second'", "at most 20"]),
        (REMOTE + "requests_per_second = 0\n", ["'requests_per_second'", "above 0"]),
        (REMOTE + 'requests_per_second = "fast"\n', ["'requests_per_second'"]),
        (REMOTE.replace('scan = "globus"', 'scan = "ftp"'), ["'scan'", "local, globus"]),
        (MINIMAL + "requests_per_second = 5\n", ["'requests_per_second'", 'scan = "globus"']),
    ],
)
def test_remote_source_errors(tmp_path: Path, text: str, words: list[str]) -> None:
    message = _error(tmp_path, text)
    for word in words:
        assert word in message, message


# -- the table of keys ------------------------------------------------------------------------


def test_every_key_has_a_one_line_meaning() -> None:
    for key in KEYS:
        assert key.meaning.strip() and "\n" not in key.meaning, key.name


def test_the_records_hold_the_table_defaults() -> None:
    job = Job(name="det", source=Path("/data/det"), destination="/mnt/det")
    records = {"job": job, "alerts": AlertSettings(), "globus": GlobusSettings()}
    for key in KEYS:
        if key.required:
            continue
        holder = records[key.table]
        if key.section:
            holder = getattr(holder, key.section)
        assert getattr(holder, key.field) == key.value, key.name


def test_init_template_names_every_key_with_its_default(tmp_path: Path) -> None:
    text = reference.template()
    lines = text.splitlines()
    for key in KEYS:
        shown = key.default if key.default not in (None, [], {}) else key.example
        assert shown is not None, key.name
        line = f"{key.name} = {reference.toml_value(shown)}"
        assert line in lines or f"# {line}" in lines, key.name
    cfg = _load(tmp_path, text)
    (job,) = cfg.jobs
    assert job == Job(name="detector", source=Path("/data/detector"), destination=job.destination)
    assert cfg.alerts == AlertSettings() and cfg.globus == GlobusSettings()


def test_markdown_reference_lists_every_key() -> None:
    text = reference.markdown()
    for key in KEYS:
        assert f"| `{key.name}` |" in text
        assert key.meaning.replace("|", "\\|") in text

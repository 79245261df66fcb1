"""``service systemd`` and ``service cron``: ready-made service files for this install."""

from __future__ import annotations

import logging
import shlex
import shutil
import sys
from pathlib import Path

import click

from globus_autosync.cli.context import APP, Context, pass_ctx

log = logging.getLogger("globus_autosync")


def _self_command(obj: Context) -> str:
    """How this install is started, with the config and state dir spelled out."""
    argv0 = Path(sys.argv[0])
    exe = str(argv0.absolute()) if argv0.name == APP and argv0.exists() else shutil.which(APP)
    base = shlex.quote(exe) if exe else f"{shlex.quote(sys.executable)} -m globus_autosync"
    return (
        f"{base} --config {shlex.quote(str(obj.config_path.absolute()))} "
        f"--state-dir {shlex.quote(str(obj.state_dir.absolute()))}"
    )


@click.group(
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync service systemd > globus-autosync.service\n"
        "  globus-autosync service cron\n"
        "\n"
        "More: docs/operations.md"
    )
)
def service() -> None:
    """Print a systemd unit or a crontab line for this install."""


@service.command(
    "systemd",
    epilog=(
        "\b\n"
        "Examples:\n"
        "  globus-autosync service systemd > globus-autosync.service\n"
        "\n"
        "More: docs/operations.md"
    ),
)
@pass_ctx
def service_systemd(obj: Context) -> None:
    """A systemd unit running `watch` (install it under ~/.config/systemd/user/)."""
    click.echo(
        f"""# globus-autosync.service: save as ~/.config/systemd/user/globus-autosync.service, then
#   systemctl --user daemon-reload && systemctl --user enable --now globus-autosync
#   (and 'loginctl enable-linger $USER' so it runs without a login session)
[Unit]
Description=globus-autosync: ship new instrument files as they settle
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={_self_command(obj)} watch
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=30
# For a service account instead of 'globus-autosync login':
# Environment=GLOBUS_AUTOSYNC_CLIENT_ID=...
# EnvironmentFile=%h/.config/globus-autosync/secret.env

[Install]
WantedBy=default.target"""
    )


@service.command(
    "cron",
    epilog=(
        "\b\nExamples:\n  globus-autosync service cron >> my.crontab\n\nMore: docs/operations.md"
    ),
)
@pass_ctx
def service_cron(obj: Context) -> None:
    """A crontab line running `run` every five minutes (add it with `crontab -e`)."""
    click.echo(f"*/5 * * * * {_self_command(obj)} --quiet run")


COMMANDS = [service]  # what cli.app registers
